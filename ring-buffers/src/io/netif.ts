/**
 * io/netif.h: the network tx and rx rings (x86_64). Pinned by netif.test.ts: tx slot 12 bytes
 * and rx slot 8 bytes, 256 entries each per 4 KiB page.
 */
import { defineLayout } from '../layout.ts';
import { ringEntries } from '../ring.ts';

export const NETTXF = { csumBlank: 1, dataValidated: 2, moreData: 4, extraInfo: 8 } as const;
export const NETRXF = { dataValidated: 1, csumBlank: 2, moreData: 4, extraInfo: 8, gsoPrefix: 16 } as const;
export const NETIF_RSP = { NULL: 1, OKAY: 0, ERROR: -1, DROPPED: -2 } as const;
export const XEN_NETIF_EXTRA_TYPE = { NONE: 0, GSO: 1, MCAST_ADD: 2, MCAST_DEL: 3, HASH: 4, MAX: 5 } as const;
export const XEN_NETIF_EXTRA_FLAG_MORE = 1;
export const XEN_NETIF_NR_SLOTS_MIN = 18;
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;

export const netifTxRequest = defineLayout('netif_tx_request', 12, {
  gref: { offset: 0, type: 'u32', writer: 'front', doc: 'grant of the page holding the data' },
  offset: { offset: 4, type: 'u16', writer: 'front', unit: 'bytes' },
  flags: { offset: 6, type: 'u16', writer: 'front', doc: 'NETTXF_*' },
  id: { offset: 8, type: 'u16', writer: 'front', doc: 'echoed in the response' },
  size: { offset: 10, type: 'u16', writer: 'front', unit: 'bytes', doc: 'first slot: packet size; later: fragment size' },
});

export const netifTxResponse = defineLayout('netif_tx_response', 4, {
  id: { offset: 0, type: 'u16', writer: 'back' },
  status: { offset: 2, type: 'i16', writer: 'back', doc: 'NETIF_RSP_*' },
});

export const netifRxRequest = defineLayout('netif_rx_request', 8, {
  id: { offset: 0, type: 'u16', writer: 'front' },
  gref: { offset: 4, type: 'u32', writer: 'front' },
});

export const netifRxResponse = defineLayout('netif_rx_response', 8, {
  id: { offset: 0, type: 'u16', writer: 'back', doc: 'from the request in the same slot' },
  offset: { offset: 2, type: 'u16', writer: 'back', unit: 'bytes' },
  flags: { offset: 4, type: 'u16', writer: 'back', doc: 'NETRXF_*' },
  status: { offset: 6, type: 'i16', writer: 'back', doc: 'bytes received if >= 0, else NETIF_RSP_*' },
});

export const netifExtraInfoGso = defineLayout('netif_extra_info (gso)', 8, {
  type: { offset: 0, type: 'u8', writer: 'either', doc: 'XEN_NETIF_EXTRA_TYPE_*' },
  flags: { offset: 1, type: 'u8', writer: 'either', doc: 'XEN_NETIF_EXTRA_FLAG_*' },
  gsoSize: { offset: 2, type: 'u16', writer: 'either', unit: 'bytes' },
  gsoType: { offset: 4, type: 'u8', writer: 'either' },
  gsoFeatures: { offset: 6, type: 'u16', writer: 'either' },
});

export const NETIF_TX_ENTRY_BYTES = Math.max(netifTxRequest.size, netifTxResponse.size);
export const NETIF_RX_ENTRY_BYTES = Math.max(netifRxRequest.size, netifRxResponse.size);
export const NETIF_TX_RING_ENTRIES_PER_PAGE = ringEntries(4096, NETIF_TX_ENTRY_BYTES);
export const NETIF_RX_RING_ENTRIES_PER_PAGE = ringEntries(4096, NETIF_RX_ENTRY_BYTES);
