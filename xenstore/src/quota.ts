/**
 * Per-domain quotas, so one guest cannot exhaust the store or the daemon for the others. The
 * names, defaults and error replies follow the C xenstored (`xenstored_domain.c`, its `-E -S -W
 * -t -Q -M` options); they apply to unprivileged domains only.
 */
export interface Quotas {
  /** Nodes a domain may own (ENOSPC). */
  maxNodes: number;
  /** Bytes in one node's value (ENOSPC). */
  maxEntrySize: number;
  /** Watches per connection (E2BIG). */
  maxWatches: number;
  /** Open transactions per connection (ENOSPC). */
  maxTransactions: number;
  /** Replies and events queued for a guest that has not read them: more requests are not read. */
  maxOutstanding: number;
  /** Watch events queued for a guest beyond which new events are dropped (and counted). */
  maxQueuedEvents: number;
  /** Length of an absolute path (EINVAL). */
  maxPathLength: number;
  /** Permission entries on one node (ENOSPC). */
  maxPerms: number;
  /** Nodes one transaction may touch (ENOSPC). */
  maxTransactionNodes: number;
}

export const DEFAULT_QUOTAS: Quotas = {
  maxNodes: 1000,
  maxEntrySize: 2048,
  maxWatches: 128,
  maxTransactions: 10,
  maxOutstanding: 20,
  maxQueuedEvents: 256,
  maxPathLength: 1024,
  maxPerms: 5,
  maxTransactionNodes: 1024,
};

export function isQuotaName(s: string): s is keyof Quotas {
  return Object.hasOwn(DEFAULT_QUOTAS, s);
}
