// What the image decoder and encoder share: libpng's error hooks, which turn a libpng error into
// a longjmp back to the caller with the message kept.
#ifndef TL_IMAGE_INTERNAL_H
#define TL_IMAGE_INTERNAL_H

#include <png.h>
#include <setjmp.h>

struct png_fail {
    jmp_buf jump;
    char message[256];
};

/// libpng's error function: keeps the message in the png_fail given as error pointer and jumps.
void tl_png_fail_exit(png_structp png, png_const_charp message);
/// libpng's warning function: warnings stay silent.
void tl_png_quiet(png_structp png, png_const_charp message);

#endif
