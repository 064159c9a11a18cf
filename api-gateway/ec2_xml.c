/* EC2 Query API responses (see ec2_xml.h).
 *
 * The gateway answers tens of thousands of small documents a second, so the writer appends
 * literal pieces with nb_buf_append() and formats numbers and times by hand instead of going
 * through printf. */
#include "ec2_xml.h"

#include <string.h>
#include <strings.h>

#include "ec2_params.h"
#include "nubo/buf.h"

#define XML_DECL    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

static void put(struct nb_buf *b, const char *s, size_t n)
{
    nb_buf_append(b, s, n);
}

#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

/* Returns the length of the UTF-8 sequence at 's' when it is well-formed and a character XML 1.0
 * allows (no surrogates, no U+FFFE or U+FFFF), else 0. 's' is NUL-terminated, and NUL is never a
 * continuation byte, so reading stops at the end. */
static size_t utf8_char_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe ||
        cp == 0xffff) {
        return 0;
    }
    return len;
}

void ec2_xml_escape(struct nb_buf *b, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    const unsigned char *run = s;
    while (*s) {
        unsigned c = *s;
        const char *rep = NULL;
        size_t adv = 1;
        if (c >= 0x80) {
            adv = utf8_char_len(s);
            if (adv == 0) {
                rep = REPLACEMENT;
                adv = 1;
            }
        } else if (c == '&') {
            rep = "&amp;";
        } else if (c == '<') {
            rep = "&lt;";
        } else if (c == '>') {
            rep = "&gt;";
        } else if (c == '\r') {
            rep = "&#13;"; /* a raw CR would reach the client as LF */
        } else if (c < 0x20 && c != '\t' && c != '\n') {
            rep = REPLACEMENT;
        }
        if (rep) {
            put(b, (const char *)run, (size_t)(s - run));
            nb_buf_puts(b, rep);
            run = s + adv;
        }
        s += adv;
    }
    put(b, (const char *)run, (size_t)(s - run));
}

void ec2_xml_open(struct nb_buf *b, const char *tag)
{
    PUT_LIT(b, "<");
    nb_buf_puts(b, tag);
    PUT_LIT(b, ">");
}

void ec2_xml_close(struct nb_buf *b, const char *tag)
{
    PUT_LIT(b, "</");
    nb_buf_puts(b, tag);
    PUT_LIT(b, ">");
}

void ec2_xml_empty(struct nb_buf *b, const char *tag)
{
    PUT_LIT(b, "<");
    nb_buf_puts(b, tag);
    PUT_LIT(b, "/>");
}

void ec2_xml_item_open(struct nb_buf *b)
{
    PUT_LIT(b, "<item>");
}

void ec2_xml_item_close(struct nb_buf *b)
{
    PUT_LIT(b, "</item>");
}

/* Appends the letters and digits of 'action' (see ec2_xml_begin()). */
static void put_action(struct nb_buf *b, const char *action)
{
    for (const char *s = action; *s; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')) {
            put(b, s, 1);
        }
    }
}

void ec2_xml_begin(struct nb_buf *b, const char *action, const char *request_id)
{
    PUT_LIT(b, XML_DECL "<");
    put_action(b, action);
    PUT_LIT(b, "Response xmlns=\"" EC2_XML_NAMESPACE "\">");
    ec2_xml_text(b, "requestId", request_id ? request_id : "");
}

void ec2_xml_end(struct nb_buf *b, const char *action)
{
    PUT_LIT(b, "</");
    put_action(b, action);
    PUT_LIT(b, "Response>");
}

void ec2_xml_text(struct nb_buf *b, const char *tag, const char *text)
{
    if (!text) {
        return;
    }
    ec2_xml_open(b, tag);
    ec2_xml_escape(b, text);
    ec2_xml_close(b, tag);
}

void ec2_xml_bool(struct nb_buf *b, const char *tag, bool value)
{
    ec2_xml_open(b, tag);
    if (value) {
        PUT_LIT(b, "true");
    } else {
        PUT_LIT(b, "false");
    }
    ec2_xml_close(b, tag);
}

void ec2_xml_int(struct nb_buf *b, const char *tag, long long value)
{
    char digits[24];
    size_t i = sizeof digits;
    /* Through unsigned arithmetic so that LLONG_MIN has a magnitude. */
    unsigned long long mag =
        value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[--i] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (value < 0) {
        digits[--i] = '-';
    }
    ec2_xml_open(b, tag);
    put(b, digits + i, sizeof digits - i);
    ec2_xml_close(b, tag);
}

/* The first and last millisecond of years 0 and 9999, the range ISO-8601's four digits hold. */
#define TIME_MIN_MS (-62167219200000LL)
#define TIME_MAX_MS 253402300799999LL

static void put_digits(char *dst, unsigned value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        dst[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

char *ec2_xml_format_time_ms(int64_t epoch_ms, char out[EC2_XML_TIME_LEN])
{
    if (epoch_ms < TIME_MIN_MS) {
        epoch_ms = TIME_MIN_MS;
    } else if (epoch_ms > TIME_MAX_MS) {
        epoch_ms = TIME_MAX_MS;
    }
    /* Floor division: -1 ms is 1969-12-31T23:59:59.999Z. */
    int64_t secs = epoch_ms / 1000;
    int64_t ms = epoch_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        memset(&tm, 0, sizeof tm);
        tm.tm_year = 70;
        tm.tm_mday = 1;
    }
    memcpy(out, "0000-00-00T00:00:00.000Z", EC2_XML_TIME_LEN);
    put_digits(out, (unsigned)(tm.tm_year + 1900), 4);
    put_digits(out + 5, (unsigned)(tm.tm_mon + 1), 2);
    put_digits(out + 8, (unsigned)tm.tm_mday, 2);
    put_digits(out + 11, (unsigned)tm.tm_hour, 2);
    put_digits(out + 14, (unsigned)tm.tm_min, 2);
    put_digits(out + 17, (unsigned)tm.tm_sec, 2);
    put_digits(out + 20, (unsigned)ms, 3);
    return out;
}

void ec2_xml_time_ms(struct nb_buf *b, const char *tag, int64_t epoch_ms)
{
    char text[EC2_XML_TIME_LEN];
    ec2_xml_open(b, tag);
    put(b, ec2_xml_format_time_ms(epoch_ms, text), EC2_XML_TIME_LEN - 1);
    ec2_xml_close(b, tag);
}

void ec2_xml_time(struct nb_buf *b, const char *tag, time_t t)
{
    /* Clamp before multiplying so that no time_t overflows. */
    int64_t s = (int64_t)t;
    if (s < TIME_MIN_MS / 1000) {
        s = TIME_MIN_MS / 1000;
    } else if (s > TIME_MAX_MS / 1000) {
        s = TIME_MAX_MS / 1000;
    }
    ec2_xml_time_ms(b, tag, s * 1000);
}

void ec2_xml_tag_item(struct nb_buf *b, const char *key, const char *value)
{
    PUT_LIT(b, "<item><key>");
    ec2_xml_escape(b, key ? key : "");
    PUT_LIT(b, "</key><value>");
    ec2_xml_escape(b, value ? value : "");
    PUT_LIT(b, "</value></item>");
}

void ec2_xml_tag_set(struct nb_buf *b, const struct ec2_params_tag *tags, size_t n)
{
    if (n == 0) {
        return;
    }
    PUT_LIT(b, "<tagSet>");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_tag_item(b, tags[i].key, tags[i].value);
    }
    PUT_LIT(b, "</tagSet>");
}

/* ---- errors ----------------------------------------------------------------------------- */

void ec2_xml_error(struct nb_buf *b, const char *code, const char *message, const char *request_id)
{
    PUT_LIT(b, XML_DECL "<Response><Errors><Error>");
    ec2_xml_text(b, "Code", code ? code : "InternalError");
    ec2_xml_text(b, "Message", message ? message : "");
    PUT_LIT(b, "</Error></Errors>");
    ec2_xml_text(b, "RequestID", request_id ? request_id : "");
    PUT_LIT(b, "</Response>");
}

/* The statuses EC2 answers with. Codes not listed are client errors and get 400. */
static const struct {
    const char *code;
    int status;
} status_table[] = {
    /* authentication and authorization */
    {"AuthFailure", 401},
    {"Blocked", 403},
    {"IncompleteSignature", 400},
    {"InvalidClientTokenId", 403},
    {"MissingAuthenticationToken", 403},
    {"OptInRequired", 403},
    {"PendingVerification", 401},
    {"RequestExpired", 400},
    {"SignatureDoesNotMatch", 403},
    {"UnauthorizedOperation", 403},
    /* the request */
    {"DryRunOperation", 412},
    {"IdempotentParameterMismatch", 400},
    {"InvalidAction", 400},
    {"InvalidParameter", 400},
    {"InvalidParameterCombination", 400},
    {"InvalidParameterValue", 400},
    {"InvalidPaginationToken", 400},
    {"InvalidQueryParameter", 400},
    {"MissingAction", 400},
    {"MissingParameter", 400},
    {"UnknownParameter", 400},
    {"UnsupportedOperation", 400},
    /* resources */
    {"IncorrectInstanceState", 400},
    {"IncorrectState", 400},
    {"InstanceLimitExceeded", 400},
    {"ResourceLimitExceeded", 400},
    {"InvalidInstanceID.NotFound", 400},
    {"InvalidInstanceID.Malformed", 400},
    {"InvalidKeyPair.NotFound", 400},
    {"InvalidKeyPair.Duplicate", 400},
    {"InvalidAMIID.NotFound", 400},
    {"InvalidAMIID.Malformed", 400},
    /* server errors */
    {"InsufficientInstanceCapacity", 500},
    {"InsufficientDesktopCapacity", 503},
    {"InternalError", 500},
    {"InternalFailure", 500},
    {"RequestLimitExceeded", 503},
    {"ServiceUnavailable", 503},
    {"Unavailable", 503},
};

int ec2_xml_status(const char *code)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++) {
        if (strcmp(status_table[i].code, code) == 0) {
            return status_table[i].status;
        }
    }
    return 400;
}

const char *ec2_xml_code(enum nb_errcode code)
{
    switch (code) {
    case NB_ERR_INVALID:
        return "InvalidParameterValue";
    case NB_ERR_MISSING:
        return "MissingParameter";
    case NB_ERR_NOT_FOUND:
        /* EC2 has no generic "not found"; the service names the resource in 'reason'. */
        return "InvalidParameterValue";
    case NB_ERR_CONFLICT:
        return "IncorrectState";
    case NB_ERR_AUTH:
        return "AuthFailure";
    case NB_ERR_FORBIDDEN:
        return "UnauthorizedOperation";
    case NB_ERR_LIMIT:
        return "ResourceLimitExceeded";
    case NB_ERR_TIMEOUT:
    case NB_ERR_UNAVAILABLE:
        return "Unavailable";
    case NB_ERR_NONE:
    case NB_ERR_INTERNAL:
    case NB_ERR_IO:
    case NB_ERR_DB:
        break;
    }
    return "InternalError";
}

int ec2_xml_error_from(struct nb_buf *b, const struct nb_error *err, const char *request_id)
{
    const char *code = err->reason[0] ? err->reason : ec2_xml_code(err->code);
    const char *message = err->msg;
    switch (err->code) {
    case NB_ERR_NONE:
    case NB_ERR_INTERNAL:
    case NB_ERR_IO:
    case NB_ERR_DB:
        message = "an internal error has occurred";
        break;
    case NB_ERR_TIMEOUT:
    case NB_ERR_UNAVAILABLE:
        message = "the service is unavailable, try again later";
        break;
    default:
        break;
    }
    ec2_xml_error(b, code, message, request_id);
    return ec2_xml_status(code);
}
