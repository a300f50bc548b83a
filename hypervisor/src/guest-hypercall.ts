/**
 * Hypercalls made by guest code on a pCPU (as opposed to a process on the socket): xenlab's
 * real-mode ABI on `int 82h` — AX = `__HYPERVISOR_*` number, BX = sub-op, CX/DX/SI/DI
 * arguments, result (0 or -errno, 16 bits) back in AX. A small subset a real-mode guest can
 * use without a kernel process:
 *
 * | AX | BX | arguments | effect |
 * |---|---|---|---|
 * | 29 sched_op | 0 yield, 1 block, 2 shutdown | CX = reason (shutdown) | as SCHEDOP_* |
 * | 18 console_io | 0 write | CX = length, DS:SI = text | a console line "(dN) ..." |
 * | 32 event_channel_op | 4 send | CX = port | EVTCHNOP_send |
 *
 * Anything else is -ENOSYS; a bad argument is Xen's errno, never a crash.
 */
import { CONSOLEIO, EVTCHNOP, Gfn, HYPERVISOR, SCHEDOP, XenErrno, XenError, type TrapFrame } from '@xenlab/xen-public';
import type { Vcpu } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';

const MAX_CONSOLE_WRITE = 1024;

export function guestHypercall(hv: Hypervisor, v: Vcpu, f: TrapFrame): number {
  const d = v.domain;
  try {
    switch (f.ax) {
      case HYPERVISOR.sched_op:
        if (f.bx === SCHEDOP.yield) hv.sched.yield(v);
        else if (f.bx === SCHEDOP.block) hv.blockVcpu(v);
        else if (f.bx === SCHEDOP.shutdown) hv.shutdownDomain(d, f.cx & 0xff);
        else throw new XenError('ENOSYS');
        return 0;
      case HYPERVISOR.console_io: {
        if (f.bx !== CONSOLEIO.write) throw new XenError('ENOSYS');
        if (f.cx > MAX_CONSOLE_WRITE) throw new XenError('EINVAL');
        let text = '';
        for (let i = 0; i < f.cx; i++) {
          const lin = ((f.ds << 4) + ((f.si + i) & 0xffff)) & 0xfffff;
          const mfn = d.p2m.lookup(Gfn(lin >>> 12));
          if (mfn === undefined) throw new XenError('EFAULT');
          text += String.fromCharCode(hv.mem.u8[hv.mem.addr(mfn) + (lin & 0xfff)]!);
        }
        for (const line of text.split('\n').filter((l) => l.length)) hv.console.write(`(d${d.domid}) ${line}\n`);
        return 0;
      }
      case HYPERVISOR.event_channel_op:
        if (f.bx !== EVTCHNOP.send) throw new XenError('ENOSYS');
        hv.evtchn.send(d, f.cx);
        return 0;
      default:
        throw new XenError('ENOSYS');
    }
  } catch (e) {
    return e instanceof XenError ? e.ret : -XenErrno.EIO;
  }
}
