/* The XML of the EC2 image actions (ec2_act_images.c), exported for the golden-file tests
 * (tests/unit/test_ec2_images.c). */
#ifndef NUBO_GW_EC2_ACT_IMAGES_H
#define NUBO_GW_EC2_ACT_IMAGES_H

struct gw_image;
struct gw_launch_perms;
struct nb_buf;

/* Appends one DescribeImages "<item>" for 'm'; 'region' is this gateway's region (the region
 * of a copy's source). A failed image has a "<stateReason>": 'state_reason' "Code: message"
 * (Code like EC2's "Client.Xxx" or "Server.Xxx") is split, any other text is the message of
 * the code Client.InvalidImage. An image whose disk size is known lists its root device with
 * that size in GiB, rounded up, as EC2 shows an image's size. */
void ec2_image_item(struct nb_buf *b, const struct gw_image *m, const char *region);

/* Appends "<launchPermission>" with a "<group>all</group>" item when public and a "<userId>"
 * item per tenant, or "<launchPermission/>" when there is none. */
void ec2_image_launch_perms(struct nb_buf *b, const struct gw_launch_perms *p);

#endif
