/*
 * A blkif front end written against Xen's own public headers (libxen-dev: xen/io/ring.h and
 * xen/io/blkif.h), used to check that xenlab's ring-buffers interoperate byte for byte.
 *
 *   blkif-front init  FILE N   initialise a ring page in FILE and push N requests (ids 1000+i)
 *   blkif-front check FILE N   consume the N responses with RING_GET_RESPONSE and check them,
 *                              then print the shared indices as JSON
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
/* ring.h leaves the memory barriers to the includer (the kernel, Mini-OS, or here). */
#define mb() __sync_synchronize()
#define rmb() __sync_synchronize()
#define wmb() __sync_synchronize()
#include <xen/io/blkif.h>

#define PAGE 4096

static void *map_page(const char *file, int create) {
  int fd = open(file, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600);
  if (fd < 0 || (create && ftruncate(fd, PAGE) != 0)) { perror(file); exit(2); }
  void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); exit(2); }
  close(fd);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s init|check FILE N\n", argv[0]); return 2; }
  int n = atoi(argv[3]);
  blkif_sring_t *sring = map_page(argv[2], strcmp(argv[1], "init") == 0);
  blkif_front_ring_t front;
  if (strcmp(argv[1], "init") == 0) {
    SHARED_RING_INIT(sring);
    FRONT_RING_INIT(&front, sring, PAGE);
    for (int i = 0; i < n; i++) {
      blkif_request_t *req = RING_GET_REQUEST(&front, front.req_prod_pvt);
      memset(req, 0, sizeof *req);
      req->operation = (i % 3 == 0) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
      req->nr_segments = 1 + i % BLKIF_MAX_SEGMENTS_PER_REQUEST;
      req->handle = 51712;
      req->id = 1000 + i;
      req->sector_number = 8 * i;
      for (int s = 0; s < req->nr_segments; s++) {
        req->seg[s].gref = 100 + s;
        req->seg[s].first_sect = 0;
        req->seg[s].last_sect = 7;
      }
      front.req_prod_pvt++;
    }
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
    printf("{\"pushed\": %d, \"notify\": %d, \"nr_ents\": %u, \"sizeof_request\": %zu}\n", n, notify,
           RING_SIZE(&front), sizeof(blkif_request_t));
    return 0;
  }
  /* check: the front end's private state is rsp_cons = 0, req_prod_pvt = n. */
  memset(&front, 0, sizeof front);
  front.sring = sring;
  front.nr_ents = __RING_SIZE(sring, PAGE);
  front.req_prod_pvt = n;
  int bad = 0, got = 0;
  while (RING_HAS_UNCONSUMED_RESPONSES(&front)) {
    blkif_response_t *rsp = RING_GET_RESPONSE(&front, front.rsp_cons);
    int i = got;
    uint8_t op = (i % 3 == 0) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
    if (rsp->id != (uint64_t)(1000 + i) || rsp->operation != op || rsp->status != BLKIF_RSP_OKAY) {
      fprintf(stderr, "response %d: id=%llu op=%u status=%d\n", i, (unsigned long long)rsp->id, rsp->operation, rsp->status);
      bad++;
    }
    front.rsp_cons++;
    got++;
  }
  int more;
  RING_FINAL_CHECK_FOR_RESPONSES(&front, more);
  printf("{\"responses\": %d, \"bad\": %d, \"more\": %d, \"req_prod\": %u, \"req_event\": %u, \"rsp_prod\": %u, \"rsp_event\": %u}\n",
         got, bad, more, sring->req_prod, sring->req_event, sring->rsp_prod, sring->rsp_event);
  return bad || got != n ? 1 : 0;
}
