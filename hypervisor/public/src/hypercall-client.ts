/**
 * The client side of xenlab's hypercall socket (what privcmd + libxc are to a Linux dom0): a
 * process connects, sets up with its domain's token, then makes typed hypercalls. A Xen error
 * rejects with `XenError` carrying Xen's errno name.
 */
import { XenError, isXenErrnoName } from './errno.ts';
import type { HcArg, HcRet, HypercallNameT, HypercallReply, SetupInfo, SubOp, TrapEvent } from './hypercall.ts';
import { WireConnection } from './wire.ts';

export class HypercallClient {
  private constructor(
    readonly conn: WireConnection,
    readonly info: SetupInfo,
  ) {}

  static async connect(socketPath: string, token: string, opts: { owner?: boolean; timeoutMs?: number } = {}): Promise<HypercallClient> {
    return HypercallClient.setUp(await WireConnection.connect(socketPath, opts.timeoutMs ?? 10_000), token, opts);
  }

  /**
   * Sets up a connection made earlier (`WireConnection.connect`) with the domain's token: a
   * process started ahead of time (the spare PV shim) connects while it waits for its token.
   */
  static async setUp(conn: WireConnection, token: string, opts: { owner?: boolean } = {}): Promise<HypercallClient> {
    try {
      const info = (await conn.request({ setup: { token, owner: opts.owner === true } }, unwrapReply)) as SetupInfo;
      return new HypercallClient(conn, info);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  get domid(): number {
    return this.info.domid;
  }

  call<H extends HypercallNameT, C extends SubOp<H>>(hypercall: H, cmd: C, arg: HcArg<H, C>): Promise<HcRet<H, C>> {
    return this.conn.request({ hypercall, cmd, arg }, unwrapReply) as Promise<HcRet<H, C>>;
  }

  /** Receives trap bounces pushed to the domain's owner connection (PV kernel processes). */
  onTrap(handler: (ev: TrapEvent) => void): void {
    this.conn.onEvent = (m) => {
      if ((m as { event?: unknown } | null)?.event === 'trap') handler(m as TrapEvent);
    };
  }

  close(): void {
    this.conn.close();
  }
}

/** A reply's result, or its Xen error thrown. */
function unwrapReply(m: unknown): unknown {
  const reply = m as HypercallReply;
  if (reply.ok) return reply.ret;
  const name = isXenErrnoName(reply.errno) ? reply.errno : 'EIO';
  throw new XenError(name, reply.message);
}
