#ifndef SWARM_COPENSSL_SHIM_H
#define SWARM_COPENSSL_SHIM_H
// The system OpenSSL (Debian's libssl-dev, 3.x): TLS 1.3 over memory BIOs, and the few
// helpers Swift cannot call directly (macros, variadic functions, FILE-based PEM writers).
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

// A TLS 1.3-only context; no session tickets (every connection does a full handshake, so
// nothing resumable is left behind), no renegotiation exists in 1.3.
static inline SSL_CTX *swarm_tls_ctx_new(int server) {
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    // Partial writes never happen on a memory BIO; this keeps SSL_write all-or-error.
    SSL_CTX_clear_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    return ctx;
}

static inline int swarm_tls_ctx_set_data(SSL_CTX *ctx, void *data) { return SSL_CTX_set_app_data(ctx, data); }
static inline void *swarm_tls_ctx_data(const SSL_CTX *ctx) { return SSL_CTX_get_app_data(ctx); }

// What OpenSSL writes (records to send) collects in one growable buffer, drained after each
// call: a BIO of our own instead of a memory BIO, which zeroes the room for every write
// (BUF_MEM_grow_clean) and copies, then cleanses, the whole buffer on each growth
// (OPENSSL_clear_realloc): on a scheduler, 6,600 instructions a record of ciphertext that is
// public anyway. Past `SWARM_TLS_SINK_KEEP` bytes the buffer is freed once drained, so a bulk
// transfer does not leave a connection holding megabytes.
typedef struct swarm_tls_sink {
    unsigned char *data;
    size_t len, cap;
} swarm_tls_sink;

#define SWARM_TLS_SINK_KEEP (256 * 1024)

static inline int swarm_tls_sink_write(BIO *b, const char *in, size_t inl, size_t *written) {
    swarm_tls_sink *s = (swarm_tls_sink *)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *written = 0;
    if (!s || inl > ((size_t)1 << 30) - s->len) return 0;
    if (s->len + inl > s->cap) {
        size_t cap = s->cap ? s->cap : 16 * 1024 + 512;
        while (cap < s->len + inl) cap *= 2;
        unsigned char *grown = (unsigned char *)realloc(s->data, cap);
        if (!grown) return 0;
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, in, inl);
    s->len += inl;
    *written = inl;
    return 1;
}

static inline long swarm_tls_sink_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num; (void)ptr;
    swarm_tls_sink *s = (swarm_tls_sink *)BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return s ? (long)s->len : 0;
    default: return 0;  // no kTLS, no datagrams, nothing else to say
    }
}

static inline int swarm_tls_sink_create(BIO *b) {
    swarm_tls_sink *s = (swarm_tls_sink *)calloc(1, sizeof(swarm_tls_sink));
    if (!s) return 0;
    BIO_set_data(b, s);
    BIO_set_init(b, 1);
    return 1;
}

static inline int swarm_tls_sink_destroy(BIO *b) {
    swarm_tls_sink *s = (swarm_tls_sink *)BIO_get_data(b);
    if (s) { free(s->data); free(s); }
    BIO_set_data(b, NULL);
    return 1;
}

// The sink's method: one for the process (it must outlive every BIO made with it). NULL on
// failure.
static inline BIO_METHOD *swarm_tls_sink_method_new(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "swarm TLS output");
    if (!m) return NULL;
    if (BIO_meth_set_write_ex(m, swarm_tls_sink_write) != 1 || BIO_meth_set_ctrl(m, swarm_tls_sink_ctrl) != 1 ||
        BIO_meth_set_create(m, swarm_tls_sink_create) != 1 || BIO_meth_set_destroy(m, swarm_tls_sink_destroy) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

static inline swarm_tls_sink *swarm_tls_sink_of(SSL *ssl) {
    return (swarm_tls_sink *)BIO_get_data(SSL_get_wbio(ssl));
}

// Bytes waiting to be sent.
static inline size_t swarm_tls_pending_out(SSL *ssl) {
    swarm_tls_sink *s = swarm_tls_sink_of(ssl);
    return s ? s->len : 0;
}

// Moves up to `cap` waiting bytes (all of them when `cap` is `swarm_tls_pending_out`) to `out`;
// returns how many.
static inline size_t swarm_tls_take_out(SSL *ssl, unsigned char *out, size_t cap) {
    swarm_tls_sink *s = swarm_tls_sink_of(ssl);
    if (!s || s->len == 0) return 0;
    size_t n = s->len < cap ? s->len : cap;
    memcpy(out, s->data, n);
    if (n < s->len) memmove(s->data, s->data + n, s->len - n);
    s->len -= n;
    if (s->len == 0 && s->cap > SWARM_TLS_SINK_KEEP) {
        free(s->data);
        s->data = NULL;
        s->cap = 0;
    }
    return n;
}

// One connection's TLS state: bytes read from the socket go into the read BIO (a memory BIO:
// an empty one reads as "retry"), bytes to send come out of the sink above.
static inline SSL *swarm_tls_new(SSL_CTX *ctx, int server, BIO_METHOD *sink) {
    if (!sink) return NULL;
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(sink);
    if (!rbio || !wbio) {
        BIO_free(rbio); BIO_free(wbio); SSL_free(ssl);
        return NULL;
    }
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(ssl, rbio, wbio);
    if (server) SSL_set_accept_state(ssl); else SSL_set_connect_state(ssl);
    return ssl;
}

// Counts what the peer sends into counts[0..2]: the KeyUpdate messages (TLS 1.3, after the
// handshake; OpenSSL answers each one asking for an update with one of its own and new keys,
// ~20 us of work for 27 bytes, with no limit of its own while data comes in between), and
// the records read (each costs ~2 us however small: the reader's budget per loop turn), and
// 1 + the description of the last alert received (0: none).
static inline void swarm_tls_msg_callback(int write_p, int version, int content_type, const void *buf,
                                          size_t len, SSL *ssl, void *arg) {
    (void)version; (void)ssl;
    if (write_p || arg == NULL) return;
    unsigned long *counts = (unsigned long *)arg;
    if (content_type == SSL3_RT_HEADER) counts[1]++;
    else if (content_type == SSL3_RT_ALERT && len >= 2) counts[2] = 1 + ((const unsigned char *)buf)[1];
    else if (content_type == SSL3_RT_HANDSHAKE && len >= 1 && ((const unsigned char *)buf)[0] == SSL3_MT_KEY_UPDATE) counts[0]++;
}

static inline void swarm_tls_count_received(SSL *ssl, unsigned long *counts) {
    SSL_set_msg_callback(ssl, swarm_tls_msg_callback);
    SSL_set_msg_callback_arg(ssl, counts);
}

// Sends a KeyUpdate asking the peer to update too (tests: a peer flooding them).
static inline int swarm_tls_request_key_update(SSL *ssl) {
    return SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1 && SSL_do_handshake(ssl) == 1;
}

static inline size_t swarm_tls_pending_in(SSL *ssl) { return BIO_ctrl_pending(SSL_get_rbio(ssl)); }

// An external PSK as the session TLS 1.3 resumes from: TLS_AES_128_GCM_SHA256 (its hash,
// SHA-256, is the PSK's hash), protocol TLS 1.3. The caller owns the result.
static inline SSL_SESSION *swarm_tls_psk_session(SSL *ssl, const unsigned char *key, size_t len) {
    const unsigned char id[2] = { 0x13, 0x01 };
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, id);
    if (!cipher) return NULL;
    SSL_SESSION *sess = SSL_SESSION_new();
    if (!sess) return NULL;
    if (SSL_SESSION_set1_master_key(sess, key, len) != 1 ||
        SSL_SESSION_set_cipher(sess, cipher) != 1 ||
        SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION) != 1) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

// The peer's certificate verified against our CA (certificate mode): 1 when verified.
static inline int swarm_tls_peer_verified(SSL *ssl) {
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) return 0;
    X509_free(peer);
    return SSL_get_verify_result(ssl) == X509_V_OK;
}

// ---- `swarm tls init`: a CA and the certificates it signs (EC P-256, SHA-256). ----

static inline EVP_PKEY *swarm_tls_make_key(void) { return EVP_EC_gen("P-256"); }

static inline int swarm_tls_add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext) return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

// A certificate's fields before its extensions: version 3, `serial`, valid from an hour ago
// for `days`, `key`, subject O=swarm CN=`cn`, issued by `issuer_name` (NULL: itself). NULL on
// failure.
static inline X509 *swarm_tls_new_cert(EVP_PKEY *key, const char *cn, X509_NAME *issuer_name, long days, long serial) {
    X509 *cert = X509_new();
    if (!cert) return NULL;
    X509_NAME *name = X509_get_subject_name(cert);
    int ok = X509_set_version(cert, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(cert), serial)
        && X509_gmtime_adj(X509_getm_notBefore(cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400L)
        && X509_set_pubkey(cert, key)
        && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"swarm", -1, -1, 0)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0)
        && X509_set_issuer_name(cert, issuer_name ? issuer_name : name);
    if (!ok) { X509_free(cert); return NULL; }
    return cert;
}

// A certificate for `key` named `cn`, signed by `issuer`/`issuer_key` (both NULL: self-signed,
// a CA). `san`: subjectAltName value ("DNS:a,IP:127.0.0.1") or NULL; `usage`: extendedKeyUsage
// value ("serverAuth,clientAuth") or NULL. NULL on failure.
static inline X509 *swarm_tls_make_cert(EVP_PKEY *key, const char *cn, const char *san, const char *usage,
                                        X509 *issuer, EVP_PKEY *issuer_key, long days, long serial) {
    int ca = issuer == NULL;
    X509 *cert = swarm_tls_new_cert(key, cn, ca ? NULL : X509_get_subject_name(issuer), days, serial);
    if (!cert) return NULL;
    X509 *signer = ca ? cert : issuer;
    int ok = swarm_tls_add_ext(cert, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (ok) ok = swarm_tls_add_ext(cert, signer, NID_key_usage,
                                   ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
    if (ok) ok = swarm_tls_add_ext(cert, signer, NID_subject_key_identifier, "hash");
    if (ok && !ca) ok = swarm_tls_add_ext(cert, signer, NID_authority_key_identifier, "keyid:always");
    if (ok && san) ok = swarm_tls_add_ext(cert, signer, NID_subject_alt_name, san);
    if (ok && usage) ok = swarm_tls_add_ext(cert, signer, NID_ext_key_usage, usage);
    if (ok) ok = X509_sign(cert, ca ? key : issuer_key, EVP_sha256()) > 0;
    if (!ok) { X509_free(cert); return NULL; }
    return cert;
}

// Writes a certificate (mode 0644) or a private key (mode 0600) as PEM, into a file this
// creates: one that exists already, or a link planted at the name (even a dangling one), is
// an error (errno EEXIST or ELOOP), never written through. 1 on success.
static inline FILE *swarm_tls_create(const char *path, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return NULL;
    fchmod(fd, mode);  // whatever the umask
    FILE *f = fdopen(fd, "w");
    if (!f) close(fd);
    return f;
}

static inline int swarm_tls_write_cert(const char *path, X509 *cert) {
    FILE *f = swarm_tls_create(path, 0644);
    if (!f) return 0;
    int ok = PEM_write_X509(f, cert);
    return fclose(f) == 0 && ok;
}

static inline int swarm_tls_write_key(const char *path, EVP_PKEY *key) {
    FILE *f = swarm_tls_create(path, 0600);
    if (!f) return 0;
    int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok;
}

// A self-signed server certificate for an HTTPS listener (no CA: its users pin it or trust
// it alone): CA:FALSE, digitalSignature, serverAuth, `san` as for swarm_tls_make_cert.
static inline X509 *swarm_tls_make_self_signed(EVP_PKEY *key, const char *cn, const char *san, long days, long serial) {
    X509 *cert = swarm_tls_new_cert(key, cn, NULL, days, serial);
    if (!cert) return NULL;
    int ok = swarm_tls_add_ext(cert, cert, NID_basic_constraints, "critical,CA:FALSE");
    if (ok) ok = swarm_tls_add_ext(cert, cert, NID_key_usage, "critical,digitalSignature");
    if (ok) ok = swarm_tls_add_ext(cert, cert, NID_subject_key_identifier, "hash");
    if (ok && san) ok = swarm_tls_add_ext(cert, cert, NID_subject_alt_name, san);
    if (ok) ok = swarm_tls_add_ext(cert, cert, NID_ext_key_usage, "serverAuth");
    if (ok) ok = X509_sign(cert, key, EVP_sha256()) > 0;
    if (!ok) { X509_free(cert); return NULL; }
    return cert;
}

// SHA-256 of the certificate's DER (what browsers and `openssl x509 -fingerprint -sha256`
// show) into out[32]. 1 on success.
static inline int swarm_tls_fingerprint(X509 *cert, unsigned char *out) {
    unsigned int n = 0;
    return X509_digest(cert, EVP_sha256(), out, &n) == 1 && n == 32;
}

// 1 when the certificate's notAfter is in the past.
static inline int swarm_tls_expired(X509 *cert) {
    return X509_cmp_current_time(X509_get0_notAfter(cert)) < 0;
}

static inline X509 *swarm_tls_read_cert(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return cert;
}

static inline EVP_PKEY *swarm_tls_read_key(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return key;
}
#endif
