/* Types shared by the gateway's service layer, the one place where nubo's rules about tenants'
 * resources live. The EC2 Query front door (ec2_*.c) and the REST front door (rest_*.c) both turn
 * a request into these types, call a gw_<resource>_*() service function, and render its result.
 *
 * Conventions of every service function:
 * - it takes the gateway context, the authenticated principal and an arena; everything it returns
 *   is allocated in that arena;
 * - it sees only the principal's tenant: another tenant's resource is "not found", never
 *   "forbidden";
 * - it returns 0, or -1 with 'err' set, err->reason holding the EC2 error code when one applies
 *   ("InvalidInstanceID.NotFound", "IncorrectInstanceState", ...);
 * - a state change and the rows that go with it are written in one transaction. */
#ifndef NUBO_GW_SVC_H
#define NUBO_GW_SVC_H

#include <stdbool.h>
#include <stddef.h>

struct gw_tag {
    const char *key;
    const char *value;
};

/* An EC2-style filter: the resource matches if its field equals any of 'values'. */
struct gw_filter {
    const char *name;
    const char *const *values;
    size_t n_values;
};

/* Pagination: 'max_results' 0 means no limit; 'next_token' NULL means from the start. */
struct gw_page {
    int max_results;
    const char *next_token;
};

/* Role checks; a failure is EC2's UnauthorizedOperation. */
struct nb_error;
struct gw_principal;
/* Returns 0 when 'who' may change resources (admin or member), -1 with 'err' otherwise. */
int gw_require_writer(const struct gw_principal *who, struct nb_error *err);
/* Returns 0 when 'who' has the admin role, the cloud operator's, -1 with 'err' otherwise. */
int gw_require_admin(const struct gw_principal *who, struct nb_error *err);

#endif
