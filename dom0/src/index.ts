export * from './toolstack/hvm-builder.ts';
