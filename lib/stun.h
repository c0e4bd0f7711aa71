/*
 * stun.h -- the STUN server of the bootstrap server, as a sans-I/O core.
 *
 * The bootstrap server answers standard STUN Binding requests (RFC 5389) on
 * a port of its own, so that any standard STUN client learns its mapped
 * (server-reflexive) address from it.  This module turns one received
 * datagram and the address it came from into at most one datagram to send
 * back; the driver owns the socket.  It keeps no state: no clock, no
 * randomness, no allocation, safe to call from any callback.
 *
 * Where RFC 8489 (the successor) differs from RFC 5389, this module follows
 * RFC 5389: no MESSAGE-INTEGRITY-SHA256, USERHASH or PASSWORD-ALGORITHM, so
 * those are unknown comprehension-required attributes like any other.
 *
 * Telling STUN from Quilt
 * -----------------------
 * quilt_stun_is_stun() is the RFC 5389 section 7.3 / RFC 7983 test: first
 * two bits 0, magic cookie at offset 4, message length a multiple of 4 that
 * matches the datagram.  Quilt datagrams start with 'Q' (0x51, first two
 * bits 01), so the two never collide and can share a port if a driver wants.
 * RFC 3489 ("classic STUN") requests carry no magic cookie and are not STUN
 * to this module: they are dropped (the Debian `stun` client is one).
 *
 * Anti-amplification: the answer is never larger than the request
 * ---------------------------------------------------------------
 * The server authenticates nobody, so a spoofed source address must not
 * turn it into an amplifier.  Rule: an answer (success or error) is never
 * longer than the request that caused it, byte for byte.  Attributes are
 * added in priority order while they fit:
 *
 *   success: XOR-MAPPED-ADDRESS (required: 32 bytes with the header),
 *            then FINGERPRINT (only if the request had one, +8),
 *            then MAPPED-ADDRESS (for clients that predate XOR, +12),
 *            then SOFTWARE "quilt" (+12).  All of it is 64 bytes.
 *   errors:  ERROR-CODE with an empty reason phrase, and for 420 the
 *            UNKNOWN-ATTRIBUTES list, are required; the reason phrase and
 *            FINGERPRINT are added if they fit.
 *
 * A request whose required answer does not fit is not answered
 * (QUILT_STUN_TOO_SMALL).  In particular a bare 20-byte Binding request --
 * what most clients send first -- gets nothing: even the smallest answer is
 * 32 bytes.  A client must make its request at least QUILT_STUN_MIN_ANSWERED
 * (32) bytes, best with the RFC 5780 PADDING attribute (0x0026), which this
 * server understands and ignores; QUILT_STUN_REQUEST_LEN (64) buys the full
 * answer.  quilt_stun_request() builds such a request.
 *
 * What standard clients do (checked against Debian 12 packages, on
 * loopback, with tests/stun_client.sh):
 *   - coturn's `turnutils_natdiscovery -m -P -p PORT SERVER` sends a
 *     1524-byte Binding request (PADDING of 1500 bytes) and prints
 *     "UDP reflexive addr: IP:PORT".  This is the supported standard client.
 *     Because of it the size limit is 1600 bytes, not 1500 (the request is
 *     IP-fragmented on a 1500-byte Ethernet path; fine on most paths).
 *   - coturn's `turnutils_stunclient` sends a bare 20-byte request and has
 *     no option to pad it: unanswered (it waits forever).
 *   - the `stun` package (Vovida client 0.97) speaks RFC 3489 without the
 *     magic cookie: dropped as not-STUN.
 * Public STUN servers answer 20-byte requests with 32 or more bytes (an
 * amplification of 1.6x or more); Quilt's issue requires that it does not.
 *
 * What is answered, and how (RFC 5389 section 7.3)
 * ------------------------------------------------
 *   - Binding request: success response, same transaction id, attributes
 *     as above.  No authentication.
 *   - Request carrying MESSAGE-INTEGRITY: this server holds no credentials.
 *     With USERNAME it answers 401 Unauthorized (section 10.1.2: the
 *     username is not one the server knows); without USERNAME, 400 Bad
 *     Request (same section).  Neither carries MESSAGE-INTEGRITY.
 *     Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored
 *     (section 15.4).  Authentication comes before the unknown-attribute
 *     check, as section 7.3 orders them.
 *   - Request with unknown comprehension-required attributes (type below
 *     0x8000; RFC 3489's CHANGE-REQUEST and RFC 5780's RESPONSE-PORT among
 *     them, which is how RFC 5780 clients learn the server does not do
 *     behaviour discovery): 420 Unknown Attribute listing them, each type
 *     once (section 7.3.1).  Unknown comprehension-optional attributes are
 *     ignored.
 *   - Request of another method: 400 Bad Request (RFC 5389 defines only
 *     Binding; we answer rather than stay silent so a client stops
 *     retransmitting).
 *   - Indications (a Binding indication is a keep-alive, section 7.3.2) and
 *     responses (no transaction of ours to match, section 7.3.3): no answer,
 *     QUILT_STUN_NO_ANSWER.
 *   - FINGERPRINT, when present, must be the last attribute, 4 bytes long
 *     and correct (CRC-32 of the message before it, XOR 0x5354554e, section
 *     15.5); otherwise the datagram is dropped.  The answer carries a
 *     FINGERPRINT when the request had one and it fits.
 *   - Malformed datagrams (bad header, length, attribute lengths, more than
 *     QUILT_STUN_MAX_ATTRS attributes, bigger than QUILT_STUN_MAX_DATAGRAM)
 *     are dropped with a negative code, never answered with an error: an
 *     error response to garbage is more traffic for a spoofer to aim.
 */
#ifndef QUILT_STUN_H
#define QUILT_STUN_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define QUILT_STUN_HEADER_LEN 20
#define QUILT_STUN_MAGIC_COOKIE 0x2112A442u
#define QUILT_STUN_TXID_LEN 12
/* Largest datagram accepted.  RFC 5389 needs no more than the path MTU;
 * coturn's padded request is 1524 bytes (see above). */
#define QUILT_STUN_MAX_DATAGRAM 1600
/* Attributes walked in one message; a message with more is dropped. */
#define QUILT_STUN_MAX_ATTRS 64
/* Smallest request that is answered: header + XOR-MAPPED-ADDRESS. */
#define QUILT_STUN_MIN_ANSWERED 32
/* A request this long gets every attribute of a success response. */
#define QUILT_STUN_REQUEST_LEN 64

/* Methods, classes and attribute types used here (RFC 5389 section 18,
 * RFC 5780 section 9). */
#define QUILT_STUN_METHOD_BINDING 0x001
#define QUILT_STUN_CLASS_REQUEST 0
#define QUILT_STUN_CLASS_INDICATION 1
#define QUILT_STUN_CLASS_SUCCESS 2
#define QUILT_STUN_CLASS_ERROR 3

#define QUILT_STUN_ATTR_MAPPED_ADDRESS 0x0001
#define QUILT_STUN_ATTR_USERNAME 0x0006
#define QUILT_STUN_ATTR_MESSAGE_INTEGRITY 0x0008
#define QUILT_STUN_ATTR_ERROR_CODE 0x0009
#define QUILT_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define QUILT_STUN_ATTR_REALM 0x0014
#define QUILT_STUN_ATTR_NONCE 0x0015
#define QUILT_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define QUILT_STUN_ATTR_PADDING 0x0026 /* RFC 5780 */
#define QUILT_STUN_ATTR_CHANGE_REQUEST 0x0003 /* RFC 5780 section 7.2 */
#define QUILT_STUN_CHANGE_IP 0x4u
#define QUILT_STUN_CHANGE_PORT 0x2u
#define QUILT_STUN_ATTR_SOFTWARE 0x8022
#define QUILT_STUN_ATTR_FINGERPRINT 0x8028

/* Positive results of quilt_stun_answer(): a valid STUN message that gets no
 * answer.  Not bad input; a driver may count them apart. */
#define QUILT_STUN_NO_ANSWER 1 /* indication or response */
#define QUILT_STUN_TOO_SMALL 2 /* request whose answer would outgrow it */

/*
 * Returns 1 when buf[0..len) passes the STUN demultiplexing test (RFC 5389
 * section 7.3, RFC 7983): at least 20 bytes, first two bits 0, the magic
 * cookie at offset 4, and a message length that is a multiple of 4 and
 * equals len - 20.  Returns 0 otherwise (including every Quilt datagram).
 * Reads at most the first 8 bytes, never past len; buf may be NULL when len
 * is 0.
 */
int quilt_stun_is_stun(const uint8_t *buf, size_t len);

/*
 * Checks a whole STUN message: the demultiplexing test, size at most
 * QUILT_STUN_MAX_DATAGRAM, every attribute's length within the message (with
 * padding to 4 bytes), at most QUILT_STUN_MAX_ATTRS attributes, and a
 * FINGERPRINT, if any, last and correct.  Does not interpret the attributes.
 * Returns 0, or QUILT_ERR_TOO_BIG, QUILT_ERR_TRUNCATED, QUILT_ERR_MALFORMED,
 * QUILT_ERR_LIMIT.
 */
int quilt_stun_validate(const uint8_t *buf, size_t len);

/*
 * Answers one datagram received on the STUN port from `from` (IPv4, host
 * order).  On 0 the answer is in out[0..*out_len), to be sent to `from`;
 * *out_len <= req_len always, and the answer never needs more than
 * min(req_len, QUILT_STUN_MAX_DATAGRAM) bytes of out, so an out_cap of
 * req_len loses nothing (a smaller out_cap lowers the byte budget).
 * out must not overlap req.  Does not keep req or out.
 *
 * Returns 0 (answer ready), QUILT_STUN_NO_ANSWER, QUILT_STUN_TOO_SMALL, or a
 * negative code for a datagram to count and drop: QUILT_ERR_INVAL (NULL
 * arguments), QUILT_ERR_TOO_BIG, QUILT_ERR_TRUNCATED, QUILT_ERR_MALFORMED,
 * QUILT_ERR_LIMIT (see quilt_stun_validate).  *out_len is set to 0 whenever
 * the result is not 0.
 */
int quilt_stun_answer(const uint8_t *req, size_t req_len,
                      const quilt_addr *from, uint8_t *out, size_t out_cap,
                      size_t *out_len);

/*
 * quilt_stun_answer() for a server that also has a socket on another port
 * (have_other_port): a request with CHANGE-REQUEST "change port" (RFC 5780
 * section 7.2) is then answered with *from_other_port set, and the driver
 * sends the answer from that other socket.  "Change IP" is always a 420:
 * the server has one address.  quilt_stun_answer() is this with no other
 * port (CHANGE-REQUEST is then a 420 too).
 */
int quilt_stun_answer_ex(const uint8_t *req, size_t req_len,
                         const quilt_addr *from, int have_other_port,
                         uint8_t *out, size_t out_cap, size_t *out_len,
                         int *from_other_port);

/*
 * Builds a Binding request of exactly len bytes with transaction id txid:
 * header, a PADDING attribute filling the room, and a FINGERPRINT.  len must
 * be a multiple of 4 between 28 and QUILT_STUN_MAX_DATAGRAM (28: no
 * PADDING); QUILT_STUN_REQUEST_LEN gets the full answer from this server.
 * Returns 0, QUILT_ERR_INVAL, or QUILT_ERR_TOO_BIG when out_cap < len.
 */
int quilt_stun_request(const uint8_t txid[QUILT_STUN_TXID_LEN], size_t len,
                       uint8_t *out, size_t out_cap, size_t *out_len);

/* The same with a CHANGE-REQUEST attribute of change_flags first (0: none;
 * QUILT_STUN_CHANGE_PORT asks for the answer from the server's other port).
 * len must leave room for it (36 bytes at least). */
int quilt_stun_request_ex(const uint8_t txid[QUILT_STUN_TXID_LEN],
                          size_t len, uint32_t change_flags, uint8_t *out,
                          size_t out_cap, size_t *out_len);

/*
 * Reads the answer to a Binding request sent with transaction id txid.  The
 * message must pass quilt_stun_validate() and carry that transaction id.
 * A success response yields its XOR-MAPPED-ADDRESS (MAPPED-ADDRESS when
 * there is none) in *mapped and returns 0.  An error response returns
 * QUILT_ERR_STATE with its code (e.g. 420) in *error_code (0 when it has no
 * valid ERROR-CODE).  MESSAGE-INTEGRITY is not checked.  Other results:
 * QUILT_ERR_INVAL, the codes of quilt_stun_validate(), QUILT_ERR_NOT_FOUND
 * (another transaction or not a Binding response), QUILT_ERR_MALFORMED (a
 * success response without an IPv4 mapped address).
 */
int quilt_stun_read_response(const uint8_t *buf, size_t len,
                             const uint8_t txid[QUILT_STUN_TXID_LEN],
                             quilt_addr *mapped, int *error_code);

/* CRC-32 (ISO-HDLC, as in RFC 1952) of buf[0..len), exposed for tests.
 * FINGERPRINT is this XOR 0x5354554e. */
uint32_t quilt_stun_crc32(const uint8_t *buf, size_t len);

#endif /* QUILT_STUN_H */
