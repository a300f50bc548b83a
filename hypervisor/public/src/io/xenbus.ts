/**
 * io/xenbus.h: the XenbusState values a frontend and a backend write to their `state` nodes, as
 * decimal strings (fact sheet §4.2). The handshake that walks through them is described in
 * docs/xenbus-handshake.md.
 */
export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  /** Backend: features published, waiting for the frontend's ring details. */
  InitWait: 2,
  /** Frontend: ring-ref, event-channel and protocol published. */
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;
export type XenbusStateName = keyof typeof XenbusState;
export type XenbusState = (typeof XenbusState)[XenbusStateName];

export const xenbusStateName = (v: number): string =>
  (Object.keys(XenbusState) as XenbusStateName[]).find((k) => XenbusState[k] === v) ?? `XenbusState(${v})`;

/** Parses a `state` node's value; undefined if it is not one of the nine states. */
export function parseXenbusState(text: string | undefined | null): XenbusState | undefined {
  if (text === undefined || text === null || !/^[0-8]$/.test(text.trim())) return undefined;
  return Number(text.trim()) as XenbusState;
}
