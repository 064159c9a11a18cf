/* Unit tests of the XML of the EC2 image actions (api-gateway/ec2_act_images.c): DescribeImages
 * items (an available image with its size and tags, a failed one with its stateReason, a copy)
 * and DescribeImageAttribute launchPermission, compared byte for byte with golden files.
 *
 * Golden files live in tests/golden/ec2/, relative to $NUBO_SRCDIR (default: the current
 * directory, the repository root). Run with NUBO_TEST_REGENERATE=1 to rewrite them from the
 * current output, then review the diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "golden.h"

#include "ec2_act_images.h"
#include "ec2_xml.h"
#include "svc.h"
#include "svc_catalog.h"
#include "svc_image_meta.h"

#include "nubo/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void golden_describe_images(void **state)
{
    static const struct gw_tag tags[] = {{"Name", "web <base> & \"co\""}};
    const struct gw_image images[] = {
        {
            /* In the image store, with a known disk size (10 GiB and one byte: 11 GiB). */
            .id = "ami-0a1b2c3d4e5f60718",
            .owner_id = "000000000001",
            .name = "debian-12",
            .description = "Debian 12 <bookworm>",
            .state = "available",
            .is_public = true,
            .image_type = "machine",
            .architecture = "x86_64",
            .root_device_name = "/dev/vda",
            .created_ms = 1795323067000LL,
            .tags = tags,
            .n_tags = 1,
            .disk_format = "qcow2",
            .kernel_id = "aki-00000000000000001",
            .virtual_size = 10LL * 1024 * 1024 * 1024 + 1,
        },
        {
            /* An import that failed, with an EC2-style code in its reason. */
            .id = "ami-00000000000000002",
            .owner_id = "000000000002",
            .name = "broken-vhd",
            .description = "",
            .state = "failed",
            .image_type = "machine",
            .architecture = "x86_64",
            .root_device_name = "/dev/vda",
            .created_ms = 1709251199999LL,
            .state_reason = "Client.UnsupportedImageFormat: the VHD footer checksum is wrong",
        },
        {
            /* A failed image with a plain reason, and a pending copy of the first. */
            .id = "ami-00000000000000003",
            .owner_id = "000000000002",
            .name = "copy of debian-12",
            .description = "",
            .state = "failed",
            .image_type = "machine",
            .architecture = "x86_64",
            .root_device_name = "/dev/vda",
            .created_ms = 1709251199999LL,
            .state_reason = "could not read \"uploads/x\": short read",
            .source_image_id = "ami-0a1b2c3d4e5f60718",
        },
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeImages", "req-img-0001");
    ec2_xml_open(&b, "imagesSet");
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
        ec2_image_item(&b, &images[i], "nubo-1");
    }
    ec2_xml_close(&b, "imagesSet");
    ec2_xml_end(&b, "DescribeImages");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_images.xml", &b), 0);
}

static void golden_describe_image_attribute_launch_permission(void **state)
{
    const char *tenants[] = {"000000000002", "000000000003"};
    const struct gw_launch_perms shared = {
        .is_public = true, .tenant_ids = tenants, .n_tenant_ids = 2};
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeImageAttribute", "req-img-0002");
    ec2_xml_text(&b, "imageId", "ami-0a1b2c3d4e5f60718");
    ec2_image_launch_perms(&b, &shared);
    ec2_xml_end(&b, "DescribeImageAttribute");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_image_attribute_launch_permission.xml", &b),
                     0);

    /* Private and shared with nobody: an empty element, as EC2 answers. */
    const struct gw_launch_perms none = {0};
    nb_buf_reset(&b);
    ec2_image_launch_perms(&b, &none);
    assert_string_equal(b.data, "<launchPermission/>");
    nb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_describe_images),
        cmocka_unit_test(golden_describe_image_attribute_launch_permission),
    };
    return cmocka_run_group_tests_name("ec2_images", tests, NULL, NULL);
}
