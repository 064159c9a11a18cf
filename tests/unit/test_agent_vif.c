/* Unit tests of the switch provider's pure parts (compute-agent/vif.c): which interfaces it
 * accepts, and the tap names it derives. Plugging into a real Open vSwitch is exercised end to
 * end by tests/e2e/test_vm_network.py (a real VM, DHCP and metadata through it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vif.h"

#include "nubo/error.h"

#include <string.h>

static void valid_interfaces(void **state)
{
    struct agent_vif ok = {.id = "eni-0123456789abcdef0", .mac = "02:c9:01:ED:cc:91"};
    assert_true(agent_vif_valid(&ok));
    const struct agent_vif bad[] = {
        {.id = NULL, .mac = "02:c9:01:ed:cc:91"},
        {.id = "eni-0123456789abcdef", .mac = "02:c9:01:ed:cc:91"},   /* 16 digits */
        {.id = "eni-0123456789abcdef0x", .mac = "02:c9:01:ed:cc:91"}, /* 18 */
        {.id = "eni-0123456789ABCDEF0", .mac = "02:c9:01:ed:cc:91"},  /* upper case */
        {.id = "sg-00123456789abcdef0", .mac = "02:c9:01:ed:cc:91"},
        {.id = "eni-0123456789abcdef0", .mac = NULL},
        {.id = "eni-0123456789abcdef0", .mac = "02:c9:01:ed:cc"},
        {.id = "eni-0123456789abcdef0", .mac = "02-c9-01-ed-cc-91"},
        {.id = "eni-0123456789abcdef0", .mac = "02:c9:01:ed:cc:9g"},
        {.id = "eni-0123456789abcdef0", .mac = "02:c9:01:ed:cc:91 "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (agent_vif_valid(&bad[i])) {
            fail_msg("accepted interface %zu (%s, %s)", i, bad[i].id ? bad[i].id : "NULL",
                     bad[i].mac ? bad[i].mac : "NULL");
        }
    }
}

static void tap_names(void **state)
{
    char tap[AGENT_VIF_TAP_MAX];
    agent_vif_tap_name("eni-0123456789abcdef0", tap);
    assert_string_equal(tap, "tap01234567");
    /* Within IFNAMSIZ whatever it is given. */
    agent_vif_tap_name("a-very-long-name-that-is-no-interface-id", tap);
    assert_true(strlen(tap) < AGENT_VIF_TAP_MAX);
}

static void plug_refuses_a_malformed_interface(void **state)
{
    struct agent_vif_config cfg = {.rundir = "/nonexistent"};
    struct agent_vif vif = {.id = "eni-../../etc", .mac = "02:c9:01:ed:cc:91"};
    struct nb_error err = {0};
    assert_int_equal(agent_vif_plug(&cfg, "i-0123456789abcdef0", &vif, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "eni-../../etc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_interfaces),
        cmocka_unit_test(tap_names),
        cmocka_unit_test(plug_refuses_a_malformed_interface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
