import { describe, expect, it } from 'vitest';
import { SHUTDOWN, XEN_DOMINF, type DomainInfo } from '@xenlab/xen-public';
import { shutdownAction } from './domain-reaper.ts';

const info = (domain: number, flags: number): DomainInfo =>
  ({ domain, flags, handle: '0'.repeat(32) }) as DomainInfo;
const shut = (reason: number) => XEN_DOMINF.shutdown | (reason << 16);

describe('shutdown actions (xl.cfg on_poweroff / on_crash)', () => {
  const opts = { onPoweroff: 'destroy', onCrash: 'preserve' } as const;
  it('applies the configured action by reason', () => {
    expect(shutdownAction(info(3, shut(SHUTDOWN.crash)), opts)).toBe('preserve');
    expect(shutdownAction(info(3, shut(SHUTDOWN.poweroff)), opts)).toBe('destroy');
    expect(shutdownAction(info(3, shut(SHUTDOWN.suspend)), opts)).toBeUndefined();
  });
  it('leaves running, dying and dom0 alone', () => {
    expect(shutdownAction(info(3, XEN_DOMINF.running), opts)).toBeUndefined();
    expect(shutdownAction(info(3, shut(SHUTDOWN.crash) | XEN_DOMINF.dying), opts)).toBeUndefined();
    expect(shutdownAction(info(0, shut(SHUTDOWN.crash)), opts)).toBeUndefined();
  });
});
