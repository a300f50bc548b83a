/**
 * io/console.h: `xencons_interface`, the PV console page — two byte rings with free-running
 * indices (in: toward the guest, 1024 bytes; out: from the guest, 2048 bytes).
 */
import { defineLayout } from '../layout.ts';

export const XENCONS_IN_BYTES = 1024;
export const XENCONS_OUT_BYTES = 2048;

export const xenconsInterface = defineLayout('xencons_interface', 3088, {
  in: { offset: 0, count: XENCONS_IN_BYTES, elem: 'u8', writer: 'back', doc: 'bytes toward the guest' },
  out: { offset: 1024, count: XENCONS_OUT_BYTES, elem: 'u8', writer: 'guest', doc: 'bytes from the guest' },
  inCons: { offset: 3072, type: 'u32', writer: 'guest' },
  inProd: { offset: 3076, type: 'u32', writer: 'back' },
  outCons: { offset: 3080, type: 'u32', writer: 'back' },
  outProd: { offset: 3084, type: 'u32', writer: 'guest' },
});
