/*
 * A small, longjmp-free face of libjpeg(-turbo) for src/jpeg.rs.
 *
 * libjpeg reports fatal errors by calling error_exit, which must not return; the usual answer is
 * setjmp/longjmp. Jumping over Rust frames is not allowed, so every function here that calls into
 * libjpeg sets its own jump point and turns an error into a return value: Rust only ever sees
 * plain calls that return.
 *
 * What it adds to the library's own API:
 * - warnings ("Premature end of JPEG file", "Corrupt JPEG data: ...") are counted and the first
 *   one kept, so the caller can refuse a damaged file instead of showing a grey half;
 * - the number of scans is limited (a progressive file with thousands of tiny scans is a
 *   cheap way to burn CPU);
 * - the DC-only mode: for a progressive file decoded at 1/8 scale, each output pixel is its
 *   block's DC coefficient alone, so once every component's DC scans are in, the AC scans are
 *   never entropy-decoded (libjpeg's buffered-image mode, stopped early).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "jerror.h"

/* What the Rust side reads; keep in step with `Info` in src/jpeg.rs. */
typedef struct {
    unsigned int width;
    unsigned int height;
    int components;
    int color_space;      /* J_COLOR_SPACE of the file */
    int progressive;
    int arithmetic;
    int adobe;            /* an Adobe APP14 marker was seen */
    int adobe_transform;  /* its transform: 0 none, 1 YCbCr, 2 YCCK */
    const unsigned char *exif; /* the APP1 "Exif" payload, in the decoder's memory */
    unsigned int exif_len;
    unsigned char *icc;   /* the ICC profile, malloc'ed, freed by thumbs_jpeg_free */
    unsigned int icc_len;
    unsigned int out_width;
    unsigned int out_height;
    int out_components;
    int dc_only;          /* the AC scans were skipped */
    unsigned long consumed; /* bytes the decoder had read when it stopped */
    int warnings;
    int first_warning;    /* the message code of the first warning */
    char message[JMSG_LENGTH_MAX];
} thumbs_info;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    thumbs_info *info;
} thumbs_error;

typedef struct {
    struct jpeg_progress_mgr pub;
    int max_scans;
} thumbs_progress;

typedef struct {
    struct jpeg_decompress_struct cinfo;
    thumbs_error err;
    thumbs_progress progress;
    thumbs_info *info;
    unsigned long len;
    int started;
    int buffered;
} thumbs_jpeg;

static void on_error(j_common_ptr cinfo) {
    thumbs_error *err = (thumbs_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->info->message);
    longjmp(err->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    thumbs_error *err = (thumbs_error *)cinfo->err;
    if (level >= 0)
        return; /* trace messages */
    if (err->info->warnings == 0) {
        err->info->first_warning = cinfo->err->msg_code;
        (*cinfo->err->format_message)(cinfo, err->info->message);
    }
    err->info->warnings++;
    cinfo->err->num_warnings++;
}

static void on_progress(j_common_ptr cinfo) {
    thumbs_progress *progress = (thumbs_progress *)cinfo->progress;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->is_decompressor && d->input_scan_number > progress->max_scans) {
        snprintf(((thumbs_error *)cinfo->err)->info->message, JMSG_LENGTH_MAX,
                 "more than %d scans", progress->max_scans);
        longjmp(((thumbs_error *)cinfo->err)->jump, 2);
    }
}

thumbs_jpeg *thumbs_jpeg_new(thumbs_info *info, int max_scans) {
    /* volatile: it is read after a longjmp back into this function. */
    thumbs_jpeg *volatile h = calloc(1, sizeof(thumbs_jpeg));
    if (h == NULL)
        return NULL;
    memset(info, 0, sizeof(*info));
    h->info = info;
    h->err.info = info;
    h->cinfo.err = jpeg_std_error(&h->err.pub);
    h->err.pub.error_exit = on_error;
    h->err.pub.emit_message = on_message;
    if (setjmp(h->err.jump)) {
        jpeg_destroy_decompress(&h->cinfo);
        free(h);
        return NULL;
    }
    jpeg_create_decompress(&h->cinfo);
    h->progress.pub.progress_monitor = on_progress;
    h->progress.max_scans = max_scans;
    h->cinfo.progress = &h->progress.pub;
    return h;
}

/* Reads the header (and the APP1, APP2 and APP14 markers). 0 on success. */
int thumbs_jpeg_header(thumbs_jpeg *h, const unsigned char *data, unsigned long len) {
    thumbs_info *info = h->info;
    if (setjmp(h->err.jump))
        return -1;
    h->len = len;
    jpeg_mem_src(&h->cinfo, data, len);
    jpeg_save_markers(&h->cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_save_markers(&h->cinfo, JPEG_APP0 + 2, 0xFFFF);
    jpeg_read_header(&h->cinfo, TRUE);
    info->width = h->cinfo.image_width;
    info->height = h->cinfo.image_height;
    info->components = h->cinfo.num_components;
    info->color_space = h->cinfo.jpeg_color_space;
    info->progressive = h->cinfo.progressive_mode;
    info->arithmetic = h->cinfo.arith_code;
    info->adobe = h->cinfo.saw_Adobe_marker;
    info->adobe_transform = h->cinfo.Adobe_transform;
    for (jpeg_saved_marker_ptr m = h->cinfo.marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && memcmp(m->data, "Exif\0\0", 6) == 0 &&
            info->exif == NULL) {
            info->exif = m->data + 6;
            info->exif_len = m->data_length - 6;
        }
    }
    if (!jpeg_read_icc_profile(&h->cinfo, &info->icc, &info->icc_len)) {
        info->icc = NULL;
        info->icc_len = 0;
    }
    return 0;
}

static int dc_complete(j_decompress_ptr cinfo) {
    if (cinfo->coef_bits == NULL)
        return 0;
    for (int c = 0; c < cinfo->num_components; c++)
        if (cinfo->coef_bits[c][0] != 0)
            return 0;
    return 1;
}

/*
 * Starts decompression at 1/scale_denom (1, 2, 4 or 8) into out_space (JCS_GRAYSCALE, JCS_RGB or
 * JCS_CMYK). With dc_only, a progressive file at 1/8 is read only up to the end of its last DC
 * scan. Sets out_width, out_height, out_components. 0 on success.
 */
int thumbs_jpeg_start(thumbs_jpeg *h, unsigned int scale_denom, int out_space, int dc_only) {
    thumbs_info *info = h->info;
    j_decompress_ptr cinfo = &h->cinfo;
    if (setjmp(h->err.jump))
        return -1;
    cinfo->scale_num = 1;
    cinfo->scale_denom = scale_denom;
    cinfo->out_color_space = (J_COLOR_SPACE)out_space;
    cinfo->dct_method = JDCT_ISLOW;
    h->buffered = dc_only && cinfo->progressive_mode && scale_denom == 8;
    if (h->buffered) {
        cinfo->buffered_image = TRUE;
        /* Smoothing guesses the missing low AC coefficients of subsampled chroma from the
           neighbouring DCs; on photos it brings nothing measurable at this scale. */
        cinfo->do_block_smoothing = FALSE;
    }
    jpeg_start_decompress(cinfo);
    h->started = 1;
    if (h->buffered) {
        for (;;) {
            int status = jpeg_consume_input(cinfo);
            if (status == JPEG_SUSPENDED || status == JPEG_REACHED_EOI)
                break;
            if (status == JPEG_SCAN_COMPLETED && dc_complete(cinfo)) {
                info->dc_only = 1;
                break;
            }
        }
        jpeg_start_output(cinfo, cinfo->input_scan_number);
    }
    info->out_width = cinfo->output_width;
    info->out_height = cinfo->output_height;
    info->out_components = cinfo->output_components;
    return 0;
}

/* Reads every line into out (stride bytes apart), then finishes. 0 on success. */
int thumbs_jpeg_read(thumbs_jpeg *h, unsigned char *out, unsigned long stride) {
    thumbs_info *info = h->info;
    j_decompress_ptr cinfo = &h->cinfo;
    if (setjmp(h->err.jump))
        return -1;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW rows[4];
        int n = 0;
        for (; n < 4 && cinfo->output_scanline + n < cinfo->output_height; n++)
            rows[n] = out + (unsigned long)(cinfo->output_scanline + n) * stride;
        jpeg_read_scanlines(cinfo, rows, n);
    }
    if (h->buffered) {
        jpeg_finish_output(cinfo);
        info->consumed = h->len - cinfo->src->bytes_in_buffer;
        jpeg_abort_decompress(cinfo);
    } else {
        jpeg_finish_decompress(cinfo);
        info->consumed = h->len - cinfo->src->bytes_in_buffer;
    }
    h->started = 0;
    return 0;
}

void thumbs_jpeg_free(thumbs_jpeg *h) {
    if (h == NULL)
        return;
    free(h->info->icc);
    h->info->icc = NULL;
    h->info->exif = NULL;
    jpeg_destroy_decompress(&h->cinfo);
    free(h);
}

/* The message codes the Rust side tells apart. */
const int THUMBS_JWRN_JPEG_EOF = JWRN_JPEG_EOF;
