/* EC2 Query API responses: a streaming XML writer over 'struct nb_buf' (no DOM: every call
 * appends), the EC2 error document, and the tables that turn errors into EC2 error codes and
 * HTTP statuses, as EC2 itself answers.
 *
 * A response reads straight down:
 *
 *     ec2_xml_begin(b, "DescribeRegions", request_id);
 *     ec2_xml_open(b, "regionInfo");
 *     ec2_xml_item_open(b);
 *     ec2_xml_text(b, "regionName", "nubo-1");
 *     ec2_xml_item_close(b);
 *     ec2_xml_close(b, "regionInfo");
 *     ec2_xml_end(b, "DescribeRegions");
 *
 * Element names are trusted literals from the code and written as they are; text is escaped, and
 * bytes that XML 1.0 cannot carry (control characters, invalid UTF-8) become U+FFFD, so the
 * document stays well-formed whatever the text holds. The writer never fails: memory exhaustion
 * aborts, as nb_buf does. */
#ifndef NUBO_EC2_XML_H
#define NUBO_EC2_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nubo/error.h"

struct nb_buf;
struct ec2_params_tag;

#define EC2_XML_NAMESPACE "http://ec2.amazonaws.com/doc/2016-11-15/"
#define EC2_XML_TIME_LEN  25 /* "2026-11-22T04:51:07.000Z" and its NUL */

/* Appends the XML declaration, "<'action'Response xmlns=...>" and the requestId element.
 * 'action' should be a valid action name (letters and digits, as ec2_params_get_common()
 * guarantees); any other character is left out of the element name. */
void ec2_xml_begin(struct nb_buf *b, const char *action, const char *request_id);

/* Appends "</'action'Response>", closing what ec2_xml_begin() opened. */
void ec2_xml_end(struct nb_buf *b, const char *action);

/* Append "<'tag'>", "</'tag'>", and the empty element "<'tag'/>" (an empty list). */
void ec2_xml_open(struct nb_buf *b, const char *tag);
void ec2_xml_close(struct nb_buf *b, const char *tag);
void ec2_xml_empty(struct nb_buf *b, const char *tag);

/* Append "<item>" and "</item>", the members of every EC2 list ("instancesSet", ...). */
void ec2_xml_item_open(struct nb_buf *b);
void ec2_xml_item_close(struct nb_buf *b);

/* Appends "<'tag'>'text', escaped</'tag'>"; appends nothing when 'text' is NULL (EC2 leaves out
 * the elements of absent fields). */
void ec2_xml_text(struct nb_buf *b, const char *tag, const char *text);

/* Appends 'text' escaped, without an element around it. */
void ec2_xml_escape(struct nb_buf *b, const char *text);

/* Appends "<'tag'>true</'tag'>" or "false". */
void ec2_xml_bool(struct nb_buf *b, const char *tag, bool value);

/* Appends "<'tag'>'value' in decimal</'tag'>". */
void ec2_xml_int(struct nb_buf *b, const char *tag, long long value);

/* Appends "<'tag'>'epoch_ms' as ISO-8601 UTC with milliseconds</'tag'>", e.g.
 * 2026-11-22T04:51:07.000Z. */
void ec2_xml_time_ms(struct nb_buf *b, const char *tag, int64_t epoch_ms);

/* The same for whole seconds since the epoch. */
void ec2_xml_time(struct nb_buf *b, const char *tag, time_t t);

/* Formats 'epoch_ms' as ISO-8601 UTC with milliseconds into 'out' (NUL-terminated). Times before
 * year 0 or after year 9999 are clamped to those years. Returns 'out'. */
char *ec2_xml_format_time_ms(int64_t epoch_ms, char out[EC2_XML_TIME_LEN]);

/* Appends one tag, "<item><key>'key'</key><value>'value'</value></item>" ('value' NULL is
 * written as empty). */
void ec2_xml_tag_item(struct nb_buf *b, const char *key, const char *value);

/* Appends "<tagSet>" with the 'n' tags of 'tags' as items, or nothing when 'n' is 0 (EC2 leaves
 * out the tagSet of an untagged resource). */
void ec2_xml_tag_set(struct nb_buf *b, const struct ec2_params_tag *tags, size_t n);

/* Appends the whole EC2 error document (declaration, Response, Errors, Error with 'code' and
 * 'message', RequestID) to 'b'. 'message' is escaped; 'code' should be an EC2 error code. */
void ec2_xml_error(struct nb_buf *b, const char *code, const char *message, const char *request_id);

/* Returns the HTTP status EC2 answers with error 'code': a known code from the table, 400 for
 * any other client code (the "Invalid*.NotFound" / ".Malformed" / ".Duplicate" families among
 * them), never less than 400. */
int ec2_xml_status(const char *code);

/* Returns the default EC2 error code for 'code' (a static string): NB_ERR_MISSING is
 * MissingParameter, NB_ERR_INVALID InvalidParameterValue, and so on. Errors that name a specific
 * resource (InvalidInstanceID.NotFound, ...) carry it in the error's 'reason' instead. */
const char *ec2_xml_code(enum nb_errcode code);

/* Appends the error document for 'err' to 'b' and returns the HTTP status to send. The EC2 code
 * is 'err->reason' when set, else ec2_xml_code('err->code'). For internal failures (NB_ERR_NONE,
 * NB_ERR_INTERNAL, NB_ERR_IO, NB_ERR_DB, NB_ERR_TIMEOUT, NB_ERR_UNAVAILABLE) the message is a
 * fixed one, never 'err->msg': that may hold SQL, paths or host names; the caller logs it. */
int ec2_xml_error_from(struct nb_buf *b, const struct nb_error *err, const char *request_id);

#endif
