/*-------------------------------------------------------------------------
 *
 * handshake.h
 *	  Mutual authentication of the nodes of a cluster on every TCP
 *	  connection between their workers (Raft groups and forwarding).
 *
 * src/cluster/handshake.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_HANDSHAKE_H
#define KALAM_HANDSHAKE_H

#include <uv.h>

/* the channel of forwarding connections; Raft groups use their group id */
#define KALAM_CHANNEL_FORWARD	0xFFFF

/* settings */
extern char *kalam_cluster_secret_file;

/*
 * The handshake ended.  peer_id is the authenticated node, or 0 with error
 * saying why not; peer is the other end's ip:port.  Either way the caller
 * owns the TCP handle again (and closes it on failure).
 */
typedef void (*KalamHandshakeCb) (uv_tcp_t *tcp, void *arg, int peer_id,
								  const char *peer, const char *error);

typedef struct KalamHandshake KalamHandshake;

extern void kalam_handshake_define_gucs(void);
extern void kalam_handshake_load_secret(bool cluster);
extern bool kalam_handshake_mac(const void *msg, size_t len,
							   unsigned char *mac);
extern void kalam_handshake_set_members(bool (*is_member) (int node_id));

extern KalamHandshake *kalam_handshake_accept(uv_tcp_t *tcp, int channel,
											  KalamHandshakeCb cb, void *arg);
extern KalamHandshake *kalam_handshake_connect(uv_tcp_t *tcp, int channel,
											   int peer_id,
											   KalamHandshakeCb cb, void *arg);
extern void kalam_handshake_cancel(KalamHandshake *hs);

extern void kalam_handshake_report(void);

#endif							/* KALAM_HANDSHAKE_H */
