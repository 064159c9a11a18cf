/* Role checks shared by the service functions (see svc.h). */
#include "svc.h"

#include "auth.h"

#include "nubo/error.h"

int gw_require_writer(const struct gw_principal *who, struct nb_error *err)
{
    if (who->role == GW_ROLE_READER) {
        nb_error_set(err, NB_ERR_FORBIDDEN,
                     "you are not authorized to perform this operation: user %s has the "
                     "reader role",
                     who->user_id);
        nb_error_reason(err, "UnauthorizedOperation");
        return -1;
    }
    return 0;
}

int gw_require_admin(const struct gw_principal *who, struct nb_error *err)
{
    if (who->role != GW_ROLE_ADMIN) {
        nb_error_set(err, NB_ERR_FORBIDDEN,
                     "you are not authorized to perform this operation: it needs the admin role");
        nb_error_reason(err, "UnauthorizedOperation");
        return -1;
    }
    return 0;
}
