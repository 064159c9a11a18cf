/* EC2 actions over key pairs: CreateKeyPair, ImportKeyPair, DeleteKeyPair, DescribeKeyPairs. */
#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "svc_keypairs.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/crypto.h"

#include <stdlib.h>
#include <string.h>

static int create_key_pair(struct ec2_call *c)
{
    const char *name, *type = NULL, *format = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "KeyName", true, &name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "KeyType", false, &type, &c->err) < 0 ||
        ec2_params_get_string(c->params, "KeyFormat", false, &format, &c->err) < 0 ||
        ec2_get_tag_specs(c, "key-pair", &tags, &n_tags) < 0) {
        return -1;
    }
    if (format && strcmp(format, "pem")) {
        nb_error_set(&c->err, NB_ERR_INVALID, "Unsupported KeyFormat '%s': nubo returns pem",
                     format);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_keypair k;
    if (gw_keypair_create(c->gw, c->who, name, type, tags, n_tags, c->arena, &k, &c->err) < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "keyName", k.name);
    ec2_xml_text(c->out, "keyFingerprint", k.fingerprint);
    ec2_xml_text(c->out, "keyMaterial", k.private_key);
    ec2_xml_text(c->out, "keyPairId", k.id);
    ec2_write_tags(c->out, k.tags, k.n_tags);
    return 0;
}

static int import_key_pair(struct ec2_call *c)
{
    const char *name, *material_b64;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "KeyName", true, &name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "PublicKeyMaterial", true, &material_b64, &c->err) < 0 ||
        ec2_get_tag_specs(c, "key-pair", &tags, &n_tags) < 0) {
        return -1;
    }
    size_t len;
    struct nb_error derr = {0};
    void *material = nb_base64_decode(material_b64, &len, &derr);
    if (!material) {
        nb_error_set(&c->err, NB_ERR_INVALID, "PublicKeyMaterial is not valid base64: %s",
                     derr.msg);
        nb_error_reason(&c->err, "InvalidKey.Format");
        return -1;
    }
    int rc = 0;
    struct gw_keypair k;
    if (c->dry_run) {
        rc = ec2_dry_run(c);
    } else {
        rc = gw_keypair_import(c->gw, c->who, name, material, len, tags, n_tags, c->arena, &k,
                               &c->err);
    }
    free(material);
    if (rc < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "keyFingerprint", k.fingerprint);
    ec2_xml_text(c->out, "keyName", k.name);
    ec2_xml_text(c->out, "keyPairId", k.id);
    ec2_write_tags(c->out, k.tags, k.n_tags);
    return 0;
}

static int delete_key_pair(struct ec2_call *c)
{
    const char *name = NULL, *id = NULL;
    if (ec2_params_get_string(c->params, "KeyName", false, &name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "KeyPairId", false, &id, &c->err) < 0) {
        return -1;
    }
    if (!name == !id) {
        nb_error_set(&c->err, NB_ERR_MISSING,
                     "The request must contain exactly one of KeyName and KeyPairId");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    char deleted[32];
    if (gw_keypair_delete(c->gw, c->who, name, id, deleted, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    ec2_xml_text(c->out, "keyPairId", deleted[0] ? deleted : NULL);
    return 0;
}

static int describe_key_pairs(struct ec2_call *c)
{
    const char **names, **ids;
    size_t n_names, n_ids, n_filters;
    struct gw_filter *filters;
    bool with_public = false;
    if (ec2_get_list(c, "KeyName", &names, &n_names) < 0 ||
        ec2_get_list(c, "KeyPairId", &ids, &n_ids) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0 ||
        ec2_params_get_bool(c->params, "IncludePublicKey", false, &with_public, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_keypair *k;
    size_t n;
    if (gw_keypairs_describe(c->gw, c->who, names, n_names, ids, n_ids, filters, n_filters,
                             c->arena, &k, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "keySet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, "keyPairId", k[i].id);
        ec2_xml_text(c->out, "keyName", k[i].name);
        ec2_xml_text(c->out, "keyFingerprint", k[i].fingerprint);
        ec2_xml_text(c->out, "keyType", k[i].key_type);
        ec2_xml_time_ms(c->out, "createTime", k[i].created_ms);
        if (with_public) {
            ec2_xml_text(c->out, "publicKey", k[i].public_key);
        }
        ec2_write_tags(c->out, k[i].tags, k[i].n_tags);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "keySet");
    return 0;
}

const struct ec2_action ec2_actions_keypairs[] = {
    {"CreateKeyPair", create_key_pair, true, "KeyName KeyType KeyFormat TagSpecification.*"},
    {"ImportKeyPair", import_key_pair, true, "KeyName PublicKeyMaterial TagSpecification.*"},
    {"DeleteKeyPair", delete_key_pair, true, "KeyName KeyPairId"},
    {"DescribeKeyPairs", describe_key_pairs, false,
     "KeyName.* KeyPairId.* Filter.* IncludePublicKey"},
    {NULL, NULL, false, NULL},
};
