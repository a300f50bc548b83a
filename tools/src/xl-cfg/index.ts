/**
 * xl.cfg parsing for `xl create` (xl.cfg(5), xl-disk-configuration(5), xl-network-configuration(5)).
 * `loadXlConfig(path, overrides)` gives a typed `XlConfig` or throws an `XlCfgError` whose
 * `format('xl create')` is the line to print.
 */
export { loadXlConfig, parseXlConfig, parseOverride, parseVifSpec, ACTIONS, type XlConfig, type VifSpec, type GuestType, type DomainAction } from './config.ts';
export { parseDiskSpec, type DiskSpec, type DiskFormat, type DiskAccess, type DiskDevtype, type DiskBackendType } from './disk.ts';
export { parseVdev, decodeVdevNumber, type Vdev } from './vdev.ts';
export { parseSettings, XlCfgError, describeSource, type XlSetting, type XlValue, type XlAtom, type XlList, type XlSource } from './lexer.ts';
