/** @xenlab/xen-public: Xen's public interface as xenlab uses it (xen/include/public). */
export * from './ids.ts';
export * from './errno.ts';
export * from './layout.ts';
export * from './xen.ts';
export * from './sched.ts';
export * from './memory.ts';
export * from './grant-table.ts';
export * from './event-channel.ts';
export * from './shared-info.ts';
export * from './domctl.ts';
export * from './hvm.ts';
export * from './hypercall.ts';
export * from './wire.ts';
export * from './hypercall-client.ts';
export * from './host.ts';
export * from './io/xs-wire.ts';
export * from './io/xenbus.ts';
