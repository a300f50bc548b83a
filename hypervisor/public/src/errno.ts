/**
 * Xen's error codes (xen/include/public/errno.h). Hypercalls return `-value`; xenlab's wire
 * carries the name and the negative value. The values equal Linux's on x86.
 */
export const XenErrno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  ETIME: 62,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EILSEQ: 84,
  ERESTART: 85,
  ENOTSOCK: 88,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
} as const;
export type XenErrnoName = keyof typeof XenErrno;

export function isXenErrnoName(s: unknown): s is XenErrnoName {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(XenErrno, s);
}

/** An error a hypercall handler raises; the hypervisor's one mapping function turns it into `-errno`. */
export class XenError extends Error {
  constructor(
    readonly errno: XenErrnoName,
    /** What failed and why, without the errno name. */
    readonly detail?: string,
  ) {
    super(detail ? `${errno}: ${detail}` : errno);
    this.name = 'XenError';
  }
  /** The hypercall return value: `-errno`. */
  get ret(): number {
    return -XenErrno[this.errno];
  }
}
