/* Unit tests of hosted VDI desktops: which REST requests a user of the 'desktop' role may make
 * (rest_vdi_desktop_user_may(), the gate rest_api.c applies after authentication), and which
 * pool entitlements there are (gw_vdi_entitlement_valid()). The broker and its worker, with
 * real VMs, are tests/e2e/test_vdi.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rest_vdi.h"
#include "svc_vdi.h"

static void desktop_users_may_use_the_broker(void **state)
{
    (void)state;
    assert_true(rest_vdi_desktop_user_may("GET", "/v1/vdi/pools"));
    assert_true(rest_vdi_desktop_user_may("POST", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718/connect"));
    assert_true(rest_vdi_desktop_user_may("GET", "/v1/vdi/desktops/dsk-0a1b2c3d4e5f60718"));
    assert_true(
        rest_vdi_desktop_user_may("POST", "/v1/vdi/desktops/dsk-0a1b2c3d4e5f60718/console"));
    assert_true(
        rest_vdi_desktop_user_may("POST", "/v1/vdi/desktops/dsk-0a1b2c3d4e5f60718/sign-out"));
    assert_true(rest_vdi_desktop_user_may("GET", "/v1/vdi/my-desktops"));
}

static void desktop_users_may_do_nothing_else(void **state)
{
    (void)state;
    /* Managing pools, and everything outside the broker. */
    assert_false(rest_vdi_desktop_user_may("POST", "/v1/vdi/pools"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718"));
    assert_false(rest_vdi_desktop_user_may("PATCH", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718"));
    assert_false(rest_vdi_desktop_user_may("DELETE", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718/desktops"));
    /* Entitlements: the provider's business, not the desktop user's. */
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718/users"));
    assert_false(rest_vdi_desktop_user_may(
        "PUT", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718/users/user-0a1b2c3d4e5f60718"));
    assert_false(rest_vdi_desktop_user_may(
        "DELETE", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718/users/user-0a1b2c3d4e5f60718"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/instances"));
    assert_false(rest_vdi_desktop_user_may("POST", "/v1/instances/i-0a1b2c3d4e5f60718/vnc"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/events"));
    assert_false(rest_vdi_desktop_user_may("PUT", "/v1/me/password"));
    /* The right paths with the wrong methods, and near misses of the patterns. */
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/pools/pool-0a1b2c3d4e5f60718/connect"));
    assert_false(rest_vdi_desktop_user_may("DELETE", "/v1/vdi/desktops/dsk-0a1b2c3d4e5f60718"));
    assert_false(rest_vdi_desktop_user_may("POST", "/v1/vdi/pools//connect"));
    assert_false(rest_vdi_desktop_user_may("POST", "/v1/vdi/pools/a/b/connect"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/pools/"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/my-desktops/x"));
    assert_false(rest_vdi_desktop_user_may("GET", "/v1/vdi/desktops/dsk-0a/console"));
}

static void entitlements_are_all_or_listed(void **state)
{
    (void)state;
    assert_true(gw_vdi_entitlement_valid("all"));
    assert_true(gw_vdi_entitlement_valid("listed"));
    assert_false(gw_vdi_entitlement_valid(NULL));
    assert_false(gw_vdi_entitlement_valid(""));
    assert_false(gw_vdi_entitlement_valid("ALL"));
    assert_false(gw_vdi_entitlement_valid("list"));
    assert_false(gw_vdi_entitlement_valid("listed "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(desktop_users_may_use_the_broker),
        cmocka_unit_test(desktop_users_may_do_nothing_else),
        cmocka_unit_test(entitlements_are_all_or_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
