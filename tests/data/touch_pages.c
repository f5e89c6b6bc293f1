/* A tiny program for the lackey tests: writes every byte of an aligned
 * buffer, reads it back, and prints the buffer's address and size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 0) : 65536;
	unsigned long sum = 0;
	char *buf;

	if (posix_memalign((void **)&buf, 4096, size))
		return 1;
	memset(buf, 0x11, size);
	for (size_t i = 0; i < size; i += 4096)
		sum += buf[i];
	printf("%p %zu %lu\n", (void *)buf, size, sum);
	free(buf);
	return 0;
}
