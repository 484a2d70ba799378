/*
 * gen.c - writes the golden captures of pcaps/: one classic pcap per case and
 * all.pcap with every qkdlink frame in order.
 *
 * Everything is fixed (secret, MACs, epochs, sequence numbers, key_IDs, pcap
 * timestamps), so two runs give byte-identical files and tests/golden/check.sh
 * can tell when the encoder's output changes. The secret is the one in
 * tests/fixtures/golden.secret. other-oui.pcap and other-pid.pcap are built
 * by hand: frames of somebody else's protocol on 0x88B7, for the dissector's
 * fallback test; all.pcap leaves them out.
 * Usage: golden-gen OUTDIR
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include "frame.h"

#define TS_BASE 1800000000L /* 2027-01-15 08:00:00 UTC */
#define TS_STEP_US 1000L
#define CHANNEL 7
#define EPOCH_A 3 /* master SAE-A */
#define EPOCH_B 5 /* slave SAE-B */
#define VLAN_ID 100
#define VLAN_PCP 5
#define SNAPLEN 65535
#define PATH_MAX_LEN 4096
#define NFRAMES 9 /* qkdlink frames build_frames() writes */

static const char SECRET[] = "qkdlink-golden-capture-secret-01"; /* 32 octets */

static const uint8_t MAC_A[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
static const uint8_t MAC_DST[6] = QKD_DST_DEFAULT;

/* Rotation 2's key (the one both routers hold at the start), 3's and 4's. */
static const char KEY_ROT2[] = "e4504ecd-9fbd-436b-8d43-2712a7f16254";
static const char KEY_ROT3[] = "ae40c06c-92a6-41ae-83f2-beb94ad8c283";
static const char KEY_ROT4[] = "839589ec-02b0-40a1-9053-bb3230fb44f9";

/* Rotation 5: the largest ANNOUNCE, QKD_KEYS_MAX UUID key_IDs. */
static const char *const KEYS_ROT5[QKD_KEYS_MAX] = {
    "18eb144b-30fe-4c5f-b98d-04500709b91c", "c66b7211-695b-4f31-a0a4-b6779858c705",
    "4bb94569-b1a1-473e-b286-7089972aeb75", "f52d7ee3-ca18-409f-9384-0e6cfad9fdac",
    "7f0d65cd-66ff-43f0-8dc1-0bdd11b37d6e", "aac6e869-36b0-437d-b73d-a98f1eb2de73",
    "99f1f939-544d-41f9-97ae-fab116fbf9b0", "3c602dec-00c5-4578-951a-1cf35c123bf9",
    "0b853335-aa41-4c57-8baf-5ba90ff90600", "433bec60-7f76-4aeb-bb5f-b39d86b1e8f6",
    "3a0adf80-dd73-4a55-949c-97076ca5e909", "73830508-c39b-4bd0-89de-832162390fbc",
    "ab5b9995-ec11-42e4-9f49-330f6b294d54", "ef986563-cb21-4478-bf2a-aef9964e0dc9",
    "75d9a4c5-890b-4101-9395-f9f8027b275d", "c42cbd5f-f386-4f89-9468-5bd1b7ffe926",
    "3c131b35-a894-4a23-83d4-03b455a0358e", "da2cf1b5-5611-4148-b892-59c771cbd190",
    "331c1d9c-33bf-4e4f-a459-bfee42ddfc64", "3dc68cbf-0a9a-4ef2-a50d-5c66aef7b46e",
    "f2c0a9d4-d3d6-4648-80ef-e1ea788984aa", "a1688e10-b09b-4f8b-9103-b8767aa45cbe",
    "9cfdeeaa-bcfc-4964-9214-f6d5eeae993d", "646d9b08-799d-4195-8157-f22d09106bdf",
    "ccf455e1-fdaf-4253-8584-2adff087100e", "9dabcceb-490d-4c6d-adb5-e13ae372b626",
    "57a3fdd5-be4c-4293-8b2a-c0637cfe7aa3", "8708cbc7-3bdf-4ae2-bfb3-24d31eff7d43",
    "482b7599-03dc-4050-8e87-513f796008b9", "3331049d-aafa-4ed9-8c04-d242bcebb697",
    "0f7e90de-6196-481d-a69c-8f270662c63b", "2874793d-9b9c-4630-820c-e4d07de3c6af",
};

#define ACTIVATION_ROT4 (TS_BASE + 600) /* ten minutes after the capture */
#define SLOT_ROT4 5
#define DETAIL_ROT4 "KME-B: HTTP 400 for key_ID 839589ec-02b0-40a1-9053-bb3230fb44f9"

/* One frame: its file name (without .pcap) and bytes. */
struct frame {
	const char *name;
	uint8_t buf[QKD_FRAME_MAX];
	size_t len;
};

static struct qkd_str str(const char *s)
{
	struct qkd_str r = {s, strlen(s)};
	return r;
}

static void l2_setup(struct qkd_l2 *l2, const uint8_t src[6], int tagged)
{
	memset(l2, 0, sizeof *l2);
	memcpy(l2->dst, MAC_DST, 6);
	memcpy(l2->src, src, 6);
	if (tagged) {
		l2->tagged = true;
		l2->vid = VLAN_ID;
		l2->pcp = VLAN_PCP;
	}
}

static void msg_setup(struct qkd_msg *m, uint8_t type, const char *sender, uint32_t epoch,
                      uint32_t seq)
{
	memset(m, 0, sizeof *m);
	m->oui = QKD_OUI_DEFAULT;
	m->pid = QKD_PID_DEFAULT;
	m->version = QKD_VERSION;
	m->type = type;
	m->secret_id = 0;
	m->channel = CHANNEL;
	m->epoch = epoch;
	m->seq = seq;
	m->sender = str(sender);
}

/* Encodes one frame into frames[*count] (cap of them) and counts it; 0 or -1. */
static int encode(struct frame *frames, size_t cap, size_t *count, const char *name,
                  const struct qkd_l2 *l2, const struct qkd_msg *m, const struct qkd_key *key)
{
	char err[256];
	if (*count >= cap) {
		fprintf(stderr, "golden-gen: %s: more than %zu frames (raise NFRAMES)\n", name,
		        cap);
		return -1;
	}
	struct frame *f = &frames[*count];
	int n = qkd_frame_encode(l2, m, key, f->buf, sizeof f->buf, err, sizeof err);
	if (n < 0) {
		fprintf(stderr, "golden-gen: %s: %s\n", name, err);
		return -1;
	}
	f->name = name;
	f->len = (size_t)n;
	(*count)++;
	return 0;
}

/* Builds every qkdlink frame into frames[]; *count is how many. 0 or -1. */
static int build_frames(struct frame *frames, size_t cap, size_t *count, const struct qkd_key *key)
{
	struct qkd_l2 l2;
	struct qkd_msg m;
	struct qkd_str k2 = str(KEY_ROT2);
	uint8_t digest2[QKD_DIGEST_LEN];
	size_t n = 0;

	if (qkd_keyids_digest(&k2, 1, digest2) != 0) {
		fprintf(stderr, "golden-gen: bad key_ID %s\n", KEY_ROT2);
		return -1;
	}

	/* The master, idle, holding rotation 2's key. */
	l2_setup(&l2, MAC_A, 0);
	msg_setup(&m, QKD_MSG_HELLO, "SAE-A", EPOCH_A, 1);
	m.u.hello.role = QKD_ROLE_MASTER;
	m.u.hello.state = QKD_STATE_IDLE;
	m.u.hello.interval = 30;
	m.u.hello.current_rotation = 2;
	m.u.hello.pending_rotation = 0;
	memcpy(m.u.hello.digest, digest2, QKD_DIGEST_LEN);
	if (encode(frames, cap, &n, "hello-untagged", &l2, &m, key) != 0)
		return -1;

	/* Rotation 3 starts: one key_ID. */
	msg_setup(&m, QKD_MSG_ANNOUNCE, "SAE-A", EPOCH_A, 2);
	m.u.announce.rotation = 3;
	m.u.announce.nkeys = 1;
	m.u.announce.keys[0] = str(KEY_ROT3);
	if (encode(frames, cap, &n, "announce-1key-untagged", &l2, &m, key) != 0)
		return -1;

	/* The slave, fetching rotation 3's key, on VLAN 100. */
	l2_setup(&l2, MAC_B, 1);
	msg_setup(&m, QKD_MSG_HELLO, "SAE-B", EPOCH_B, 1);
	m.u.hello.role = QKD_ROLE_SLAVE;
	m.u.hello.state = QKD_STATE_ROTATING;
	m.u.hello.interval = 30;
	m.u.hello.current_rotation = 2;
	m.u.hello.pending_rotation = 3;
	memcpy(m.u.hello.digest, digest2, QKD_DIGEST_LEN);
	if (encode(frames, cap, &n, "hello-vlan", &l2, &m, key) != 0)
		return -1;

	/* The master retransmits (new sequence number), tagged. */
	l2_setup(&l2, MAC_A, 1);
	msg_setup(&m, QKD_MSG_ANNOUNCE, "SAE-A", EPOCH_A, 3);
	m.u.announce.rotation = 3;
	m.u.announce.nkeys = 1;
	m.u.announce.keys[0] = str(KEY_ROT3);
	if (encode(frames, cap, &n, "announce-1key-vlan", &l2, &m, key) != 0)
		return -1;

	l2_setup(&l2, MAC_B, 1);
	msg_setup(&m, QKD_MSG_ACK, "SAE-B", EPOCH_B, 2);
	m.u.ack.rotation = 3;
	m.u.ack.result = QKD_RES_OK;
	if (encode(frames, cap, &n, "ack-vlan", &l2, &m, key) != 0)
		return -1;

	/* Rotation 4 in hitless key-chain mode: activation time and slot. */
	l2_setup(&l2, MAC_A, 0);
	msg_setup(&m, QKD_MSG_ANNOUNCE, "SAE-A", EPOCH_A, 4);
	m.u.announce.rotation = 4;
	m.u.announce.nkeys = 1;
	m.u.announce.keys[0] = str(KEY_ROT4);
	m.u.announce.has_activation = true;
	m.u.announce.activation = ACTIVATION_ROT4;
	m.u.announce.has_slot = true;
	m.u.announce.slot = SLOT_ROT4;
	if (encode(frames, cap, &n, "announce-tlvs", &l2, &m, key) != 0)
		return -1;

	l2_setup(&l2, MAC_B, 0);
	msg_setup(&m, QKD_MSG_ACK, "SAE-B", EPOCH_B, 3);
	m.u.ack.rotation = 4;
	m.u.ack.result = QKD_RES_KME_NOT_FOUND;
	m.u.ack.detail = str(DETAIL_ROT4);
	if (encode(frames, cap, &n, "ack-detail", &l2, &m, key) != 0)
		return -1;

	/* Rotation 5: the largest key count. */
	l2_setup(&l2, MAC_A, 0);
	msg_setup(&m, QKD_MSG_ANNOUNCE, "SAE-A", EPOCH_A, 5);
	m.u.announce.rotation = 5;
	m.u.announce.nkeys = QKD_KEYS_MAX;
	for (size_t i = 0; i < QKD_KEYS_MAX; i++)
		m.u.announce.keys[i] = str(KEYS_ROT5[i]);
	if (encode(frames, cap, &n, "announce-32keys", &l2, &m, key) != 0)
		return -1;

	/* The example of protocol.md §9, exactly: the smallest PDU (46 octets). */
	l2_setup(&l2, MAC_B, 0);
	msg_setup(&m, QKD_MSG_ACK, "B", 1, 1);
	m.u.ack.rotation = 1;
	m.u.ack.result = QKD_RES_OK;
	if (encode(frames, cap, &n, "ack-untagged", &l2, &m, key) != 0)
		return -1;

	*count = n;
	return 0;
}

/* A 60-octet 0x88B7 frame of another protocol: OUI, PID, then opaque data. */
static void build_foreign(struct frame *f, const char *name, uint32_t oui, uint16_t pid)
{
	static const char payload[] = "not a qkdlink frame";
	memset(f->buf, 0, QKD_ETH_MIN);
	memcpy(f->buf, MAC_DST, 6);
	memcpy(f->buf + 6, MAC_A, 6);
	f->buf[12] = 0x88;
	f->buf[13] = 0xB7;
	f->buf[14] = (uint8_t)(oui >> 16);
	f->buf[15] = (uint8_t)(oui >> 8);
	f->buf[16] = (uint8_t)oui;
	f->buf[17] = (uint8_t)(pid >> 8);
	f->buf[18] = (uint8_t)pid;
	memcpy(f->buf + 19, payload, sizeof payload - 1);
	f->name = name;
	f->len = QKD_ETH_MIN;
}

/* Appends frames[0..n) to OUTDIR/NAME.pcap; frame i gets timestamp ts[i]. */
static int write_pcap(const char *dir, const char *name, const struct frame *const *frames,
                      const long *ts, size_t n)
{
	char path[PATH_MAX_LEN];
	int pl = snprintf(path, sizeof path, "%s/%s.pcap", dir, name);
	if (pl < 0 || (size_t)pl >= sizeof path) {
		fprintf(stderr, "golden-gen: path too long: %s/%s.pcap\n", dir, name);
		return -1;
	}
	pcap_t *p = pcap_open_dead(DLT_EN10MB, SNAPLEN);
	if (p == NULL) {
		fprintf(stderr, "golden-gen: pcap_open_dead failed\n");
		return -1;
	}
	pcap_dumper_t *d = pcap_dump_open(p, path);
	if (d == NULL) {
		fprintf(stderr, "golden-gen: %s: %s\n", path, pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct pcap_pkthdr h;
		memset(&h, 0, sizeof h);
		h.ts.tv_sec = TS_BASE + ts[i] / 1000000L;
		h.ts.tv_usec = ts[i] % 1000000L;
		h.caplen = (bpf_u_int32)frames[i]->len;
		h.len = (bpf_u_int32)frames[i]->len;
		pcap_dump((u_char *)d, &h, frames[i]->buf);
	}
	int rc = 0;
	if (pcap_dump_flush(d) != 0 || ferror(pcap_dump_file(d))) {
		fprintf(stderr, "golden-gen: %s: write failed\n", path);
		rc = -1;
	}
	pcap_dump_close(d);
	pcap_close(p);
	return rc;
}

static int make_dir(const char *dir)
{
	if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		fprintf(stderr, "golden-gen: %s: not a directory\n", dir);
		return -1;
	}
	fprintf(stderr, "golden-gen: %s: %s\n", dir, strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	static struct frame frames[NFRAMES];
	static struct frame foreign[2];
	const struct frame *all[NFRAMES];
	long ts[NFRAMES];
	struct qkd_key key;
	char err[256];
	size_t n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: golden-gen OUTDIR\n");
		return 1;
	}
	if (make_dir(argv[1]) != 0)
		return 1;
	if (qkd_key_init(&key, (const uint8_t *)SECRET, sizeof SECRET - 1, err, sizeof err) != 0) {
		fprintf(stderr, "golden-gen: %s\n", err);
		return 1;
	}
	int rc = build_frames(frames, NFRAMES, &n, &key);
	qkd_key_clear(&key);
	if (rc != 0)
		return 1;

	for (size_t i = 0; i < n; i++) {
		all[i] = &frames[i];
		ts[i] = (long)i * TS_STEP_US;
		if (write_pcap(argv[1], frames[i].name, &all[i], &ts[i], 1) != 0)
			return 1;
	}
	if (write_pcap(argv[1], "all", all, ts, n) != 0)
		return 1;

	build_foreign(&foreign[0], "other-oui", 0x123456, 0xBEEF);
	build_foreign(&foreign[1], "other-pid", QKD_OUI_DEFAULT, 0x0001);
	for (size_t i = 0; i < 2; i++) {
		const struct frame *f = &foreign[i];
		long t = (long)(n + i) * TS_STEP_US;
		if (write_pcap(argv[1], f->name, &f, &t, 1) != 0)
			return 1;
	}
	return 0;
}
