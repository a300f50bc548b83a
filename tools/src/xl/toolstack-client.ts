/**
 * xl's side of the toolstack protocol (@xenlab/xen-public toolstack.ts): one request/reply
 * connection to dom0's toolstack service on `<run>/dom0/toolstack.sock`, over the shared wire
 * framing. Errors come back as sentences and are shown as they are.
 */
import { existsSync } from 'node:fs';
import { WireConnection, toolstackSocket, type HostLayout, type ToolstackArg, type ToolstackOp, type ToolstackReply, type ToolstackRet } from '@xenlab/xen-public';
import { UserError } from './host.ts';

export class ToolstackClient {
  private constructor(private readonly conn: WireConnection) {}

  static async connect(layout: HostLayout, tool: string, timeoutMs = 120_000): Promise<ToolstackClient> {
    const path = toolstackSocket(layout);
    if (!existsSync(path)) throw new UserError(`${tool}: dom0's toolstack is not listening on ${path} (is the host fully started? \`npx xenlab status\`)`);
    try {
      return new ToolstackClient(await WireConnection.connect(path, timeoutMs));
    } catch (e) {
      throw new UserError(`${tool}: cannot reach dom0's toolstack at ${path}: ${(e as Error).message}`);
    }
  }

  async call<O extends ToolstackOp>(tool: string, op: O, arg: ToolstackArg<O>): Promise<ToolstackRet<O>> {
    const r = await this.conn.request<ToolstackReply>({ op, arg });
    if (!r.ok) throw new UserError(`${tool}: ${r.error}`);
    return r.ret as ToolstackRet<O>;
  }

  close(): void {
    this.conn.close();
  }
}
