import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadXlConfig, parseDiskSpec, parseSettings, parseVdev, parseVifSpec, parseXlConfig, XlCfgError, type DiskSpec } from './index.ts';

const DIR = '/srv/guests';
const FILE = `${DIR}/g.cfg`;

function cfgError(fn: () => unknown): XlCfgError {
  try {
    fn();
  } catch (e) {
    if (e instanceof XlCfgError) return e;
    throw e;
  }
  throw new Error('expected an XlCfgError');
}

function disk(spec: string): DiskSpec {
  const d = parseDiskSpec(spec, DIR);
  if (typeof d === 'string') throw new Error(d);
  return d;
}

describe('xl.cfg syntax', () => {
  it('reads strings, numbers, lists over lines, comments, trailing commas and ;', () => {
    const s = parseSettings(
      [
        '# a guest',
        "name = 'g1'   # trailing comment",
        'memory=64; vcpus = 0x2',
        'disk = [',
        "   'file:/a.img,xvda,w',   # first",
        '   "/b.img,raw,xvdb,ro",',
        ']',
        'empty = []',
        'esc = "a\\tb\\\\c\\"d\\x41\\101"',
        "hash = 'not # a comment'",
      ].join('\n'),
      FILE,
    );
    expect(s.map((x) => x.key)).toEqual(['name', 'memory', 'vcpus', 'disk', 'empty', 'esc', 'hash']);
    expect(s[0]!.value).toEqual({ kind: 'string', text: 'g1', line: 2 });
    expect(s[1]!.value).toMatchObject({ kind: 'number', text: '64' });
    expect(s[2]!.value).toMatchObject({ kind: 'number', text: '0x2' });
    expect(s[3]!.source).toEqual({ file: FILE, line: 4 });
    const d = s[3]!.value;
    expect(d.kind === 'list' && d.items.map((i) => [i.text, i.line])).toEqual([['file:/a.img,xvda,w', 5], ['/b.img,raw,xvdb,ro', 6]]);
    expect(s[4]!.value).toEqual({ kind: 'list', items: [], line: 8 });
    expect(s[5]!.value).toMatchObject({ text: 'a\tb\\c"dAA' });
    expect(s[6]!.value).toMatchObject({ text: 'not # a comment' });
  });

  it('appends with += and lets later settings win', () => {
    const s = parseSettings("disk = ['/a,,xvda']\ndisk += ['/b,,xvdb']\nname='x'\nname='y'", FILE);
    const last = (k: string) => [...s].reverse().find((x) => x.key === k)!.value;
    expect(last('disk')).toMatchObject({ kind: 'list', items: [{ text: '/a,,xvda' }, { text: '/b,,xvdb' }] });
    expect(last('name')).toMatchObject({ text: 'y' });
  });

  it.each([
    ["name = 'abc", 1, "unterminated string (missing closing ')"],
    ['name = abc', 1, "expected a value, found 'abc' (strings must be quoted: 'abc')"],
    ["\n\ndisk = [ 'a'\n 'b' ]", 4, "expected ',' or ']' in the list, found '''"],
    ["disk = [ 'a',\n", 1, "unterminated list (missing ']')"],
    ['memory 64', 1, "expected '=' after the setting name"],
    ["x = 1 2", 1, "unexpected '2' after the value"],
    ["x = [[1]]", 1, 'lists cannot be nested'],
    ['= 3', 1, "expected a setting name, found '='"],
    ["x = 'a'\nx += 'b'", 2, "'+=' needs a list"],
  ])('rejects %j at line %i', (text, line, msg) => {
    const e = cfgError(() => parseSettings(text, FILE));
    expect(e.where).toEqual({ file: FILE, line });
    expect(e.detail).toContain(msg);
  });
});

describe('virtual-device numbers (xen-vbd-interface)', () => {
  it.each([
    ['xvda', 51712],
    ['xvdb', 51728],
    ['xvda1', 51713],
    ['xvdp15', (202 << 8) | (15 << 4) | 15],
    ['xvdq', (1 << 28) | (16 << 8)],
    ['xvdaa', (1 << 28) | (26 << 8)],
    ['xvda16', (1 << 28) | 16],
    ['sda', 2048],
    ['sdb3', (8 << 8) | (1 << 4) | 3],
    ['hda', 768],
    ['hdb', 768 + 64],
    ['hdc', 22 << 8],
    ['hdd1', (22 << 8) | 64 | 1],
    ['d0', 51712],
    ['d0p1', 51713],
    ['d16p2', (1 << 28) | (16 << 8) | 2],
    ['51728', 51728],
  ])('%s = %i', (name, n) => {
    expect(parseVdev(name)).toMatchObject({ name, number: n });
  });

  it('reports disk and partition', () => {
    expect(parseVdev('xvdc2')).toMatchObject({ disk: 2, partition: 2 });
    expect(parseVdev('hdd')).toMatchObject({ disk: 3, partition: 0 });
    expect(parseVdev('51728')).toMatchObject({ disk: 1, partition: 0 });
  });

  it.each(['vda', 'xvd', 'hde', 'sdq', 'xvda0', 'xvda01', 'xvda256', 'xvd1', '0', 'XVDA'])('rejects %s', (name) => {
    expect(typeof parseVdev(name)).toBe('string');
  });
});

describe('disk specifications (xl-disk-configuration)', () => {
  it('legacy prefix form: file:/img,xvda,w', () => {
    expect(disk('file:/img,xvda,w')).toMatchObject({ target: '/img', format: 'raw', vdev: { number: 51712 }, access: 'rw', devtype: 'disk' });
    expect(disk('phy:/dev/vg/g,xvdb,r')).toMatchObject({ target: '/dev/vg/g', backendtype: 'phy', access: 'ro', vdev: { number: 51728 } });
    expect(disk('phy:vg/g,xvdb,r').target).toBe('/dev/vg/g');
    expect(disk('raw:/root/image.iso,hdc:cdrom,ro')).toMatchObject({ target: '/root/image.iso', devtype: 'cdrom', access: 'ro', vdev: { number: 22 << 8 } });
    expect(disk('tap:qcow2:/q.img,xvda,w')).toMatchObject({ format: 'qcow2', backendtype: 'tap' });
  });

  it('positional form, with defaults for empty positions', () => {
    expect(disk('/img,raw,xvda,rw')).toMatchObject({ target: '/img', format: 'raw', access: 'rw' });
    expect(disk('/dev/vg/guest-volume,,hda')).toMatchObject({ format: 'raw', access: 'rw', vdev: { number: 768 } });
    expect(disk('/root/image.iso,,hdc,cdrom')).toMatchObject({ devtype: 'cdrom', access: 'ro' });
    expect(disk('/root/image.iso,,hdc,,cdrom')).toMatchObject({ devtype: 'cdrom', access: 'ro' });
    expect(disk('/root/image.iso,raw,hdc,devtype=cdrom')).toMatchObject({ devtype: 'cdrom', access: 'ro' });
  });

  it('keyword form, and target= taking the rest of the string', () => {
    const a = disk('format=raw, vdev=xvda, access=rw, target=/img');
    expect(a).toMatchObject({ target: '/img', format: 'raw', access: 'rw', vdev: { number: 51712 } });
    expect(disk('vdev=xvda, target=/odd,name with spaces.img').target).toBe('/odd,name with spaces.img');
    expect(disk('/img,,xvda,backend=1,script=block,discard,direct-io-safe,untrusted')).toMatchObject({
      backend: '1', script: 'block', discard: true, directIoSafe: true, trusted: false,
    });
    expect(disk('/img,,xvda,no-discard').discard).toBe(false);
  });

  it('the legacy, positional and keyword forms agree', () => {
    const strip = (d: DiskSpec) => ({ ...d, spec: '', backendtype: undefined });
    const a = strip(disk('file:/img,xvda,w'));
    expect(strip(disk('/img,raw,xvda,rw'))).toEqual(a);
    expect(strip(disk('format=raw, vdev=xvda, access=rw, target=/img'))).toEqual(a);
  });

  it('resolves relative targets against the config directory', () => {
    expect(disk('disk.img,,xvda').target).toBe('/srv/guests/disk.img');
    expect(disk('file:../img/d.img,xvda,w').target).toBe('/srv/img/d.img');
    expect(disk('vdev=xvda,target=sub/x.img').target).toBe('/srv/guests/sub/x.img');
  });

  it.each([
    ['/img,raw,xvda,rx', "unknown access mode 'rx' (expected r, ro, w or rw)"],
    ['/img,xvda,w', "unknown format 'xvda'"],
    ['/img,,xvda,w,extra', 'too many positional parameters'],
    ['/img,raw', 'no vdev'],
    ['/img,,vda', "'vda' is not a virtual device name"],
    ['/img,,xvda,colour=red', "unknown parameter 'colour'"],
    ['/img,,xvda,vdev=xvdb', 'vdev given twice'],
    ['format=raw,vdev=xvda', 'no target'],
    ['/img,,xvda,devtype=tape', "unknown devtype 'tape'"],
    ['/img,,xvda,rw,cdrom', 'a cdrom cannot be writable'],
    ['/img,,xvda,discard,no-discard', 'both discard and no-discard'],
  ])('rejects %j', (spec, msg) => {
    const r = parseDiskSpec(spec, DIR);
    expect(typeof r).toBe('string');
    expect(r).toContain(msg);
  });

  it('an empty cdrom has no target', () => {
    expect(disk(',,hdc,cdrom').target).toBeUndefined();
  });
});

describe('vif specifications', () => {
  it('parses keys and validates the MAC', () => {
    expect(parseVifSpec('mac=00:16:3E:01:02:03, bridge=xenbr0, model=e1000, rate=10Mb/s')).toMatchObject({
      mac: '00:16:3e:01:02:03', bridge: 'xenbr0', model: 'e1000', rate: '10Mb/s', backend: '0',
    });
    expect(parseVifSpec('')).toMatchObject({ mac: undefined, keys: {} });
    expect(parseVifSpec('mac=01:16:3e:01:02:03')).toContain('multicast');
    expect(parseVifSpec('mac=00:16:3e')).toContain('six hex bytes');
    expect(parseVifSpec('bridge')).toContain('not key=value');
  });
});

describe('domain configuration', () => {
  const base = ["name = 'g1'", 'kernel = "hello.bin"'];
  const cfg = (...lines: string[]) => parseXlConfig([...base, ...lines].join('\n'), FILE);

  it('types the known keys, applies defaults and keeps unknown keys', () => {
    const c = cfg('memory = 64', 'vcpus = 2', "disk = [ 'file:d.img,xvda,w' ]", "vif = [ 'bridge=xenbr0' ]", 'on_crash = "preserve"',
      "serial = 'pty'", 'uuid = "6C4A0E52-3F7B-4C55-9C4B-2D2C6F0E1A01"', 'pci_power_mgmt = 1', 'boot = "cd"');
    expect(c).toMatchObject({
      file: FILE, name: 'g1', type: 'pv', memory: 64, maxmem: 64, vcpus: 2, maxvcpus: 2,
      kernel: '/srv/guests/hello.bin', onPoweroff: 'destroy', onReboot: 'restart', onCrash: 'preserve',
      serial: ['pty'], uuid: '6c4a0e52-3f7b-4c55-9c4b-2d2c6f0e1a01', boot: 'cd',
    });
    expect(c.disks).toHaveLength(1);
    expect(c.disks[0]).toMatchObject({ target: '/srv/guests/d.img', vdev: { name: 'xvda', number: 51712 } });
    expect(c.vifs[0]!.bridge).toBe('xenbr0');
    expect(c.unknownKeys).toEqual(['pci_power_mgmt']);
    expect(c.settings.get('pci_power_mgmt')!.value).toMatchObject({ text: '1' });
  });

  it('accepts numbers written as strings, and builder = "hvm"', () => {
    expect(cfg('memory = "256"').memory).toBe(256);
    expect(parseXlConfig("name='h'\nbuilder='hvm'", FILE).type).toBe('hvm');
  });

  it.each(['destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart'])('on_reboot = %s', (a) => {
    expect(cfg(`on_reboot = '${a}'`).onReboot).toBe(a);
  });

  it('command-line overrides replace or append to file settings', () => {
    const text = [...base, 'memory = 64', "disk = ['a.img,,xvda']"].join('\n');
    const c = parseXlConfig(text, FILE, ['memory=128', "name='g2'", 'on_poweroff=preserve', "disk+=['b.img,,xvdb']"]);
    expect(c).toMatchObject({ memory: 128, name: 'g2', onPoweroff: 'preserve' });
    expect(c.disks.map((d) => d.vdev.name)).toEqual(['xvda', 'xvdb']);
    const e = cfgError(() => parseXlConfig(text, FILE, ['memory=lots']));
    expect(e.message).toBe("command-line override 'memory=lots': memory: expected a whole number of MiB, found the string 'lots'");
    expect(cfgError(() => parseXlConfig(text, FILE, ['justaword'])).message).toContain('expected key=value');
  });

  it('errors name the file, the line and the key, and say what was expected', () => {
    const text = ["name = 'g'", 'kernel = "k"', '', '', '', 'disk = [', "  'file:/a.img,xvda,w',", "  '/x/b.img,raw,xvdb,rx',", ']'].join('\n');
    const e = cfgError(() => parseXlConfig(text, '/x/g.cfg'));
    expect(e.format('xl create')).toBe(
      "xl create: /x/g.cfg line 8: disk = [...]: unknown access mode 'rx' (expected r, ro, w or rw)",
    );
    expect(cfgError(() => cfg('memory = -1')).message).toContain("expected a value, found '-1'");
    expect(cfgError(() => cfg('memory = 0')).message).toBe(`${FILE} line 3: memory: 0 is out of range (expected 1..16777216 MiB)`);
    expect(cfgError(() => cfg('memory = 64', 'maxmem = 32')).message).toContain('line 4: maxmem: maxmem 32 is below memory 64');
    expect(cfgError(() => cfg('on_crash = "explode"')).message).toContain('line 3: on_crash: unknown action \'explode\' (expected destroy, restart, preserve, rename-restart');
    expect(cfgError(() => cfg('on_crash = "soft-reset"')).message).toContain('only valid for on_soft_reset');
    expect(cfgError(() => cfg('type = "hvn"')).message).toContain("unknown type 'hvn' (expected pv, pvh or hvm)");
    expect(cfgError(() => cfg('vcpus = "two"')).message).toContain('vcpus: expected a whole number');
    expect(cfgError(() => cfg('kernel = ["a"]')).message).toContain('line 3: kernel = [...]: expected a quoted string, found a [ list ]');
    expect(cfgError(() => cfg('uuid = "123"')).message).toContain('is not a UUID');
    expect(cfgError(() => cfg('boot = "x"')).message).toContain('is not a boot order');
    expect(cfgError(() => cfg("disk = ['a,,xvda', 'b,,xvda']")).message).toContain('line 3: disk = [...]: vdev xvda is used twice');
    expect(cfgError(() => cfg('disk = [1]')).message).toContain('expected quoted disk specifications');
    expect(cfgError(() => cfg("vif = ['mac=zz']")).message).toContain("line 3: vif = [...]: mac 'zz'");
    expect(cfgError(() => parseXlConfig('memory = 64', FILE)).message).toBe(`${FILE}: name: missing: every domain needs a name (add name = "...")`);
    expect(cfgError(() => parseXlConfig("name = '42'\nkernel='k'", FILE)).message).toContain('not a usable domain name');
    expect(cfgError(() => parseXlConfig("name = 'p'", FILE)).message).toContain('needs a kernel');
  });

  it('loads a file and resolves paths against its directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlcfg-'));
    const file = join(dir, 'guest.cfg');
    writeFileSync(file, "name = 'fromfile'\nkernel = 'k.bin'\ndisk = ['format=raw, vdev=xvda, access=rw, target=img/d.img']\n");
    const c = loadXlConfig(file);
    expect(c.kernel).toBe(join(dir, 'k.bin'));
    expect(c.disks[0]!.target).toBe(join(dir, 'img/d.img'));
    expect(cfgError(() => loadXlConfig(join(dir, 'nope.cfg'))).message).toBe(`${join(dir, 'nope.cfg')}: config file not found`);
  });
});
