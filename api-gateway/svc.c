/* Role checks shared by the service functions (see svc.h). */
#include "svc.h"

#include "auth.h"

#include "nubo/error.h"

int gw_require_writer(const struct gw_principal *who, struct nb_error *err)
{
    /* Desktop users are stopped at both front doors already; refused here too, so that no
     * change can reach them through a path the gates did not foresee. */
    if (who->role == GW_ROLE_READER || who->role == GW_ROLE_DESKTOP) {
        nb_error_set(err, NB_ERR_FORBIDDEN,
                     "you are not authorized to perform this operation: user %s has the "
                     "%s role",
                     who->user_id, who->role == GW_ROLE_READER ? "reader" : "desktop");
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
