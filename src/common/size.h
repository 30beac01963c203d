/* size.h - sizes as people write them: 512M, 4G, 1.5G, 65536. */
#ifndef FM_SIZE_H
#define FM_SIZE_H
#include <stdint.h>
/* Parse a byte count with an optional K/M/G/T suffix (powers of 1024, an
 * optional trailing B or iB). Returns 0 or -EINVAL. */
int fm_parse_size(const char *s, uint64_t *out);
/* Format bytes as "1.5G", "512M", "4096". */
void fm_format_size(uint64_t bytes, char *buf, int len);
#endif
