import { describe, expect, it } from 'vitest';
import { SHUTDOWN, XEN_DOMINF, type DomainInfo } from '@xenlab/xen-public';
import { LIST_HEADER, SCHED_CREDIT_HEADER, VCPU_LIST_HEADER, infoLines, listRow, schedCreditPool, schedCreditRow, stateString, vcpuRow } from './format.ts';
import { formatCpuMap, parseCpuList } from './host.ts';

const info = (o: Partial<DomainInfo>): DomainInfo => ({
  domain: 0, flags: 0, tot_pages: 0, max_pages: 0, outstanding_pages: 0, shr_pages: 0, paged_pages: 0,
  shared_info_frame: 0, cpu_time: 0, nr_online_vcpus: 1, max_vcpu_id: 0, ssidref: 0, handle: '0'.repeat(32),
  cpupool: 0, gpaddr_bits: 52, ...o,
});

describe('xl layouts (fact sheet §13)', () => {
  it('xl list header and rows match Xen', () => {
    expect(LIST_HEADER.indexOf('ID')).toBe(44);
    expect(LIST_HEADER).toBe('Name                                        ID   Mem VCPUs\tState\tTime(s)');
    expect(listRow('Domain-0', info({ domain: 0, tot_pages: 2048 * 256, nr_online_vcpus: 2, flags: XEN_DOMINF.running, cpu_time: 123.4e9 }))).toBe(
      'Domain-0                                     0  2048     2     r-----     123.4',
    );
    const crashed = XEN_DOMINF.shutdown | (SHUTDOWN.crash << 16);
    expect(listRow('crashy', info({ domain: 4, tot_pages: 512 * 256, flags: crashed, cpu_time: 5e9 }))).toBe(
      'crashy                                       4   512     1     ---sc-       5.0',
    );
  });

  it('state letters', () => {
    expect(stateString(XEN_DOMINF.blocked | XEN_DOMINF.paused)).toBe('-bp---');
    expect(stateString(XEN_DOMINF.shutdown | (SHUTDOWN.reboot << 16))).toBe('---sr-');
    expect(stateString(XEN_DOMINF.shutdown | (SHUTDOWN.poweroff << 16))).toBe('---s--');
    expect(stateString(XEN_DOMINF.dying)).toBe('-----d');
  });

  it('xl vcpu-list', () => {
    expect(VCPU_LIST_HEADER).toBe('Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)');
    const row = { name: 'Domain-0', domid: 0, vcpu: 1, online: true, running: true, blocked: false, cpu: 3, timeNs: 12.34e9, hard: 'all', soft: 'all' };
    // print_vcpuinfo: "%-32s %5u %5u" then "%5u %3c%c- " (no space before CPU, as in xl)
    expect(vcpuRow(row)).toBe('Domain-0                             0     1    3   r--      12.3  all / all');
    expect(vcpuRow({ ...row, online: false })).toBe('Domain-0                             0     1    -   --p      12.3  all / all');
  });

  it('cpu maps', () => {
    expect(formatCpuMap([0, 1, 2, 3], 4)).toBe('all');
    expect(formatCpuMap([], 4)).toBe('none');
    expect(formatCpuMap([0, 1, 2, 3, 6], 8)).toBe('0-3,6');
    expect(parseCpuList('t', '0-2,5', 8)).toEqual([0, 1, 2, 5]);
    expect(parseCpuList('t', 'all', 3)).toEqual([0, 1, 2]);
    expect(() => parseCpuList('t', '9', 4)).toThrow(/outside/);
    expect(() => parseCpuList('t', 'x', 4)).toThrow(/invalid/);
  });

  it('xl info and sched-credit', () => {
    expect(infoLines([['host', 'h'], ['virt_caps', ' pv hvm']])).toBe('host                   : h\nvirt_caps              : pv hvm');
    expect(schedCreditPool(30, 1000, 0)).toBe('Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us');
    expect(SCHED_CREDIT_HEADER).toBe('Name                                ID Weight  Cap');
    expect(schedCreditRow('Domain-0', 0, 256, 0)).toBe('Domain-0                             0    256    0');
  });
});
