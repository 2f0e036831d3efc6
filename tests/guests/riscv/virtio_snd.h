/*
 * virtio_snd.h: the virtio-snd device's interface (virtio 1.2 section 5.14),
 * for the sndtone guest: device ID, queues, request and status codes, the
 * configuration layout and the control, I/O and event messages. Definitions
 * only (no code, no data); all fields little-endian, as the guest is.
 */
#ifndef VIRTIO_SND_H
#define VIRTIO_SND_H

#include <stdint.h>

#define VIRTIO_ID_SOUND             25

/* Queues. */
#define VIRTIO_SND_VQ_CONTROL       0
#define VIRTIO_SND_VQ_EVENT         1
#define VIRTIO_SND_VQ_TX            2
#define VIRTIO_SND_VQ_RX            3

/* Configuration space (virtio 1.2 has no `controls` word: it comes with
 * VIRTIO_SND_F_CTLS in later versions, and is not read without it). */
#define VIRTIO_SND_CFG_JACKS        0x0
#define VIRTIO_SND_CFG_STREAMS      0x4
#define VIRTIO_SND_CFG_CHMAPS       0x8

/* Request codes, event codes and statuses. */
#define VIRTIO_SND_R_JACK_INFO      0x0001u
#define VIRTIO_SND_R_JACK_REMAP     0x0002u
#define VIRTIO_SND_R_PCM_INFO       0x0100u
#define VIRTIO_SND_R_PCM_SET_PARAMS 0x0101u
#define VIRTIO_SND_R_PCM_PREPARE    0x0102u
#define VIRTIO_SND_R_PCM_RELEASE    0x0103u
#define VIRTIO_SND_R_PCM_START      0x0104u
#define VIRTIO_SND_R_PCM_STOP       0x0105u
#define VIRTIO_SND_R_CHMAP_INFO     0x0200u

#define VIRTIO_SND_EVT_JACK_CONNECTED     0x1000u
#define VIRTIO_SND_EVT_JACK_DISCONNECTED  0x1001u
#define VIRTIO_SND_EVT_PCM_PERIOD_ELAPSED 0x1100u
#define VIRTIO_SND_EVT_PCM_XRUN           0x1101u

#define VIRTIO_SND_S_OK             0x8000u
#define VIRTIO_SND_S_BAD_MSG        0x8001u
#define VIRTIO_SND_S_NOT_SUPP       0x8002u
#define VIRTIO_SND_S_IO_ERR         0x8003u

/* Directions. */
#define VIRTIO_SND_D_OUTPUT         0
#define VIRTIO_SND_D_INPUT          1

/* PCM stream features (bit numbers). */
#define VIRTIO_SND_PCM_F_SHMEM_HOST        0
#define VIRTIO_SND_PCM_F_SHMEM_GUEST       1
#define VIRTIO_SND_PCM_F_MSG_POLLING       2
#define VIRTIO_SND_PCM_F_EVT_SHMEM_PERIODS 3
#define VIRTIO_SND_PCM_F_EVT_XRUNS         4

/* PCM formats (bit numbers in `formats`, values of `format`); only the
 * 16-bit ones are named here. */
#define VIRTIO_SND_PCM_FMT_S16      5
#define VIRTIO_SND_PCM_FMT_U16      6

/* PCM rates (bit numbers in `rates`, values of `rate`): 5512, 8000, 11025,
 * 16000, 22050, 32000, 44100, 48000, 64000, 88200, 96000, 176400, 192000,
 * 384000 (0..13). */
#define VIRTIO_SND_PCM_RATE_8000    1
#define VIRTIO_SND_PCM_RATE_16000   3
#define VIRTIO_SND_PCM_RATE_44100   6
#define VIRTIO_SND_PCM_RATE_48000   7

/* Channel positions (the first few). */
#define VIRTIO_SND_CHMAP_NONE       0
#define VIRTIO_SND_CHMAP_NA         1
#define VIRTIO_SND_CHMAP_MONO       2
#define VIRTIO_SND_CHMAP_FL         3
#define VIRTIO_SND_CHMAP_FR         4
#define VIRTIO_SND_CHMAP_MAX_SIZE   18

/* ---- messages ---------------------------------------------------------- */
struct virtio_snd_hdr {
    uint32_t code;
};

struct virtio_snd_event {
    struct virtio_snd_hdr hdr;
    uint32_t data;
};

/* JACK_INFO, PCM_INFO, CHMAP_INFO request. */
struct virtio_snd_query_info {
    struct virtio_snd_hdr hdr;
    uint32_t start_id;
    uint32_t count;
    uint32_t size;
};

struct virtio_snd_info {
    uint32_t hda_fn_nid;
};

struct virtio_snd_jack_info {
    struct virtio_snd_info hdr;
    uint32_t features;
    uint32_t hda_reg_defconf;
    uint32_t hda_reg_caps;
    uint8_t connected;
    uint8_t padding[7];
};

struct virtio_snd_pcm_hdr {
    struct virtio_snd_hdr hdr;
    uint32_t stream_id;
};

struct virtio_snd_pcm_info {
    struct virtio_snd_info hdr;
    uint32_t features;
    uint64_t formats;
    uint64_t rates;
    uint8_t direction;
    uint8_t channels_min;
    uint8_t channels_max;
    uint8_t padding[5];
};

struct virtio_snd_pcm_set_params {
    struct virtio_snd_pcm_hdr hdr;
    uint32_t buffer_bytes;
    uint32_t period_bytes;
    uint32_t features;
    uint8_t channels;
    uint8_t format;
    uint8_t rate;
    uint8_t padding;
};

struct virtio_snd_chmap_info {
    struct virtio_snd_info hdr;
    uint8_t direction;
    uint8_t channels;
    uint8_t positions[VIRTIO_SND_CHMAP_MAX_SIZE];
};

/* I/O messages (tx and rx queues): header, buffer, status. */
struct virtio_snd_pcm_xfer {
    uint32_t stream_id;
};

struct virtio_snd_pcm_status {
    uint32_t status;
    uint32_t latency_bytes;
};

_Static_assert(sizeof(struct virtio_snd_query_info) == 16, "query_info");
_Static_assert(sizeof(struct virtio_snd_jack_info) == 24, "jack_info");
_Static_assert(sizeof(struct virtio_snd_pcm_info) == 32, "pcm_info");
_Static_assert(sizeof(struct virtio_snd_pcm_set_params) == 24, "set_params");
_Static_assert(sizeof(struct virtio_snd_chmap_info) == 24, "chmap_info");
_Static_assert(sizeof(struct virtio_snd_pcm_status) == 8, "pcm_status");

#endif /* VIRTIO_SND_H */
