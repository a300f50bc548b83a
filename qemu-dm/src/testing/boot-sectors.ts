/**
 * Boot sectors for the component tests, as raw bytes with the nasm source beside them (generated
 * from the listing: `nasm -f bin -l`, org 7C00h). `bootSector()` pads a program to 510 bytes and
 * adds the 55AAh signature. Each is tiny on purpose: it exercises one group of BIOS services the
 * way classic boot programs do.
 */

/** Pad `code` to a 512-byte boot sector ending in 55h AAh. */
export function bootSector(code: number[], signature = true): Uint8Array {
  if (code.length > 510) throw new Error(`boot sector code is ${code.length} bytes, more than 510`);
  const s = new Uint8Array(512);
  s.set(code);
  if (signature) {
    s[510] = 0x55;
    s[511] = 0xaa;
  }
  return s;
}

/** Prints "hello" with INT 10h AH=0Eh, then halts. */
export const HELLO_SECTOR = bootSector([
  // start:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  0xbe, 0x16, 0x7c,                        // mov si, msg
  // next:
  0xac,                                    // lodsb
  0x84, 0xc0,                              // test al, al
  0x74, 0x08,                              // jz done
  0xb4, 0x0e,                              // mov ah, 0x0E            ; INT 10h teletype
  0x30, 0xff,                              // xor bh, bh
  0xcd, 0x10,                              // int 0x10
  0xeb, 0xf3,                              // jmp next
  // done:
  0xfa,                                    // cli
  0xf4,                                    // hlt
  0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0d, 0x0a, 0x00, // msg:    db "hello", 13, 10, 0
]);

/** INT 13h AH=02h (CHS) and AH=42h/43h (LBA) reads and a write; port-80h markers around them. */
export const DISK_SECTOR = bootSector([
  // start:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  0x8e, 0xc0,                              // mov es, ax
  0xb0, 0x01,                              // mov al, 1
  0xe6, 0x80,                              // out 0x80, al            ; marker 1: before the CHS read
  0xb8, 0x04, 0x02,                        // mov ax, 0x0204          ; AH=02h read, AL=4 sectors
  0xb9, 0x02, 0x00,                        // mov cx, 0x0002          ; cylinder 0, sector 2 (= LBA 1)
  0xba, 0x80, 0x00,                        // mov dx, 0x0080          ; head 0, drive 80h
  0xbb, 0x00, 0x80,                        // mov bx, 0x8000          ; to 0000:8000
  0xcd, 0x13,                              // int 0x13
  0x72, 0x37,                              // jc fail
  0x3c, 0x04,                              // cmp al, 4
  0x75, 0x33,                              // jne fail
  0xb0, 0x02,                              // mov al, 2
  0xe6, 0x80,                              // out 0x80, al            ; marker 2: between the CHS read and the LBA read
  0xbe, 0x67, 0x7c,                        // mov si, dap_read
  0xb4, 0x42,                              // mov ah, 0x42            ; extended read: 8 sectors at LBA 100 to 1000:0000
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x72, 0x24,                              // jc fail
  0xb0, 0x03,                              // mov al, 3
  0xe6, 0x80,                              // out 0x80, al            ; marker 3: after the LBA read
  0xbe, 0x77, 0x7c,                        // mov si, dap_write
  0xb8, 0x00, 0x43,                        // mov ax, 0x4300          ; extended write: 2 sectors from 0000:8000 to LBA 200
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x72, 0x14,                              // jc fail
  0xbe, 0x87, 0x7c,                        // mov si, dap_outside
  0xb4, 0x42,                              // mov ah, 0x42            ; a read past the end of the disk must fail
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x73, 0x09,                              // jnc fail
  0x88, 0x26, 0x01, 0x06,                  // mov [0x0601], ah        ; its status, for the test to check
  0xbe, 0x97, 0x7c,                        // mov si, msg_ok
  0xeb, 0x07,                              // jmp print
  // fail:
  0x88, 0x26, 0x00, 0x06,                  // mov [0x0600], ah
  0xbe, 0xa1, 0x7c,                        // mov si, msg_fail
  // print:
  0xac,                                    // lodsb
  0x84, 0xc0,                              // test al, al
  0x74, 0x08,                              // jz done
  0xb4, 0x0e,                              // mov ah, 0x0E
  0x30, 0xff,                              // xor bh, bh
  0xcd, 0x10,                              // int 0x10
  0xeb, 0xf3,                              // jmp print
  // done:
  0xfa,                                    // cli
  0xf4,                                    // hlt
  0x10, 0x00,                              // dap_read:    db 0x10, 0
  0x08, 0x00,                              // dw 8                    ; sectors
  0x00, 0x00, 0x00, 0x10,                  // dw 0x0000, 0x1000       ; buffer offset, segment
  0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dd 100, 0               ; LBA
  0x10, 0x00,                              // dap_write:   db 0x10, 0
  0x02, 0x00,                              // dw 2
  0x00, 0x80, 0x00, 0x00,                  // dw 0x8000, 0x0000
  0xc8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dd 200, 0
  0x10, 0x00,                              // dap_outside: db 0x10, 0
  0x01, 0x00,                              // dw 1
  0x00, 0x90, 0x00, 0x00,                  // dw 0x9000, 0x0000
  0xf0, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, // dd 0x00FFFFF0, 0
  0x64, 0x69, 0x73, 0x6b, 0x20, 0x6f, 0x6b, 0x0d, 0x0a, // msg_ok:      db "disk ok", 13, 10, 0
  0x00,
  0x64, 0x69, 0x73, 0x6b, 0x20, 0x46, 0x41, 0x49, 0x4c, // msg_fail:    db "disk FAIL", 13, 10, 0
  0x0d, 0x0a, 0x00,
]);

/** APM installation check, connect, and "set power state: off" (INT 15h AX=5300h/5301h/5307h). */
export const APM_SECTOR = bootSector([
  // start:
  0xb8, 0x00, 0x53,                        // mov ax, 0x5300          ; APM installation check
  0x31, 0xdb,                              // xor bx, bx
  0xcd, 0x15,                              // int 0x15
  0x72, 0x18,                              // jc stop
  0x81, 0xfb, 0x4d, 0x50,                  // cmp bx, 0x504D          ; "PM"
  0x75, 0x12,                              // jne stop
  0xb8, 0x01, 0x53,                        // mov ax, 0x5301          ; connect the real-mode interface
  0x31, 0xdb,                              // xor bx, bx
  0xcd, 0x15,                              // int 0x15
  0xb8, 0x07, 0x53,                        // mov ax, 0x5307          ; set power state
  0xbb, 0x01, 0x00,                        // mov bx, 0x0001          ; all devices
  0xb9, 0x03, 0x00,                        // mov cx, 0x0003          ; off
  0xcd, 0x15,                              // int 0x15
  // stop:
  0xfa,                                    // cli
  0xf4,                                    // hlt
]);

/** Echoes keys read with INT 16h AH=00h until Enter, then stores the shift flags at 0000:0600. */
export const KEYS_SECTOR = bootSector([
  // start:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  // again:
  0xb4, 0x00,                              // mov ah, 0x00            ; INT 16h: wait for a key, AL = ASCII
  0xcd, 0x16,                              // int 0x16
  0x3c, 0x0d,                              // cmp al, 13              ; Enter ends the line
  0x74, 0x08,                              // je done
  0xb4, 0x0e,                              // mov ah, 0x0E            ; echo it
  0x30, 0xff,                              // xor bh, bh
  0xcd, 0x10,                              // int 0x10
  0xeb, 0xf0,                              // jmp again
  // done:
  0xb4, 0x02,                              // mov ah, 0x02            ; shift flags into 0000:0600
  0xcd, 0x16,                              // int 0x16
  0xa2, 0x00, 0x06,                        // mov [0x0600], al
  0xfa,                                    // cli
  0xf4,                                    // hlt
]);

/** Many INT 10h/13h/14h/15h calls, results stored from 0000:0600 (E820 entries at 0000:0800). */
export const SERVICES_SECTOR = bootSector([
  // ; Results go to 0000:0600 and up; the test reads them back.
  // start:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  0x8e, 0xc0,                              // mov es, ax
  // ; --- INT 13h AH=08h: drive parameters ---
  0xb4, 0x08,                              // mov ah, 0x08
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x89, 0x0e, 0x00, 0x06,                  // mov [0x0600], cx
  0x89, 0x16, 0x02, 0x06,                  // mov [0x0602], dx
  // ; --- AH=15h: disk type and size ---
  0xb4, 0x15,                              // mov ah, 0x15
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x88, 0x26, 0x04, 0x06,                  // mov [0x0604], ah
  0x89, 0x0e, 0x06, 0x06,                  // mov [0x0606], cx
  0x89, 0x16, 0x08, 0x06,                  // mov [0x0608], dx
  // ; --- AH=41h: EDD installation check ---
  0xb4, 0x41,                              // mov ah, 0x41
  0xbb, 0xaa, 0x55,                        // mov bx, 0x55AA
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x89, 0x1e, 0x0a, 0x06,                  // mov [0x060A], bx
  0xa3, 0x0c, 0x06,                        // mov [0x060C], ax
  0x89, 0x0e, 0x0e, 0x06,                  // mov [0x060E], cx
  // ; --- AH=48h: extended parameters into 0000:0700 ---
  0xc7, 0x06, 0x00, 0x07, 0x1e, 0x00,      // mov word [0x0700], 0x1E
  0xb4, 0x48,                              // mov ah, 0x48
  0xb2, 0x80,                              // mov dl, 0x80
  0xbe, 0x00, 0x07,                        // mov si, 0x0700
  0xcd, 0x13,                              // int 0x13
  // ; --- bad requests: drive 81h, zero sectors; then AH=01h reports the last status ---
  0xb8, 0x01, 0x02,                        // mov ax, 0x0201
  0xb9, 0x01, 0x00,                        // mov cx, 0x0001
  0xba, 0x81, 0x00,                        // mov dx, 0x0081
  0xbb, 0x00, 0x90,                        // mov bx, 0x9000
  0xcd, 0x13,                              // int 0x13
  0x18, 0xc0,                              // sbb al, al              ; AL = FFh if CF
  0xa3, 0x10, 0x06,                        // mov [0x0610], ax
  0xb8, 0x00, 0x02,                        // mov ax, 0x0200
  0xb9, 0x01, 0x00,                        // mov cx, 0x0001
  0xba, 0x80, 0x00,                        // mov dx, 0x0080
  0xcd, 0x13,                              // int 0x13
  0x18, 0xc0,                              // sbb al, al
  0xa3, 0x12, 0x06,                        // mov [0x0612], ax
  0xb4, 0x01,                              // mov ah, 0x01
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0xa3, 0x14, 0x06,                        // mov [0x0614], ax
  // ; --- AH=42h into a buffer that crosses a 64 KiB boundary: 0000:FE00, 2 sectors ---
  0xbe, 0x40, 0x7d,                        // mov si, dap
  0xb4, 0x42,                              // mov ah, 0x42
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x18, 0xc0,                              // sbb al, al
  0xa3, 0x16, 0x06,                        // mov [0x0616], ax
  // ; --- AH=03h: write those 2 sectors back at CHS 0/2/1 (= LBA 126) ---
  0xb8, 0x02, 0x03,                        // mov ax, 0x0302
  0xb9, 0x01, 0x00,                        // mov cx, 0x0001
  0xba, 0x80, 0x02,                        // mov dx, 0x0280
  0xbb, 0x00, 0xfe,                        // mov bx, 0xFE00
  0xcd, 0x13,                              // int 0x13
  0x18, 0xc0,                              // sbb al, al
  0xa3, 0x28, 0x06,                        // mov [0x0628], ax
  // ; --- INT 16h: stuff a key (AH=05h), peek it (AH=01h, ZF=0), read it (AH=00h) ---
  0xb4, 0x05,                              // mov ah, 0x05
  0xb9, 0x61, 0x1e,                        // mov cx, 0x1E61          ; scan 1Eh, 'a'
  0xcd, 0x16,                              // int 0x16
  0xa2, 0x2a, 0x06,                        // mov [0x062A], al
  0xb4, 0x01,                              // mov ah, 0x01
  0xcd, 0x16,                              // int 0x16
  0x9f,                                    // lahf
  0xa3, 0x2c, 0x06,                        // mov [0x062C], ax        ; AL = key's ASCII, AH = flags (ZF is bit 6)
  0xb4, 0x00,                              // mov ah, 0x00
  0xcd, 0x16,                              // int 0x16
  0xa3, 0x2e, 0x06,                        // mov [0x062E], ax
  // ; --- INT 15h: AH=88h, E820h (16-bit view), C0h ---
  0xb4, 0x88,                              // mov ah, 0x88
  0xcd, 0x15,                              // int 0x15
  0xa3, 0x18, 0x06,                        // mov [0x0618], ax
  0x31, 0xdb,                              // xor bx, bx
  0xbf, 0x00, 0x08,                        // mov di, 0x0800
  // e820_next:
  0xb8, 0x20, 0xe8,                        // mov ax, 0xE820
  0xba, 0x50, 0x41,                        // mov dx, 0x4150          ; low half of 'SMAP'
  0xb9, 0x14, 0x00,                        // mov cx, 20
  0xcd, 0x15,                              // int 0x15
  0x72, 0x0b,                              // jc e820_done
  0x83, 0xc7, 0x14,                        // add di, 20
  0xfe, 0x06, 0x1a, 0x06,                  // inc byte [0x061A]
  0x85, 0xdb,                              // test bx, bx
  0x75, 0xe8,                              // jnz e820_next
  // e820_done:
  0xb4, 0xc0,                              // mov ah, 0xC0
  0xcd, 0x15,                              // int 0x15
  0x89, 0x1e, 0x1c, 0x06,                  // mov [0x061C], bx
  0x8c, 0x06, 0x1e, 0x06,                  // mov [0x061E], es
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xc0,                              // mov es, ax
  // ; --- INT 10h: write string, set/get cursor, write char+attr, mode, scroll ---
  0xb8, 0x01, 0x13,                        // mov ax, 0x1301          ; write string, move cursor
  0xbb, 0x1e, 0x00,                        // mov bx, 0x001E          ; page 0, yellow on blue
  0xb9, 0x03, 0x00,                        // mov cx, 3
  0xba, 0x05, 0x0a,                        // mov dx, 0x0A05          ; row 10, column 5
  0xbd, 0x50, 0x7d,                        // mov bp, str
  0xcd, 0x10,                              // int 0x10
  0xb4, 0x03,                              // mov ah, 0x03
  0x30, 0xff,                              // xor bh, bh
  0xcd, 0x10,                              // int 0x10
  0x89, 0x16, 0x20, 0x06,                  // mov [0x0620], dx
  0xb4, 0x02,                              // mov ah, 0x02
  0x30, 0xff,                              // xor bh, bh
  0xba, 0x00, 0x0c,                        // mov dx, 0x0C00          ; row 12, column 0
  0xcd, 0x10,                              // int 0x10
  0xb8, 0x58, 0x09,                        // mov ax, 0x0958          ; 'X'
  0xbb, 0x4f, 0x00,                        // mov bx, 0x004F
  0xb9, 0x03, 0x00,                        // mov cx, 3
  0xcd, 0x10,                              // int 0x10
  0xb4, 0x0f,                              // mov ah, 0x0F
  0xcd, 0x10,                              // int 0x10
  0xa3, 0x22, 0x06,                        // mov [0x0622], ax
  0xb8, 0x01, 0x06,                        // mov ax, 0x0601          ; scroll rows 10-12 up one line, fill attribute 70h
  0xb7, 0x70,                              // mov bh, 0x70
  0xb9, 0x00, 0x0a,                        // mov cx, 0x0A00
  0xba, 0x4f, 0x0c,                        // mov dx, 0x0C4F
  0xcd, 0x10,                              // int 0x10
  // ; --- INT 14h: status, then send 'S' ---
  0xb4, 0x03,                              // mov ah, 0x03
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0xa3, 0x24, 0x06,                        // mov [0x0624], ax
  0xb8, 0x53, 0x01,                        // mov ax, 0x0153
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0x88, 0x26, 0x26, 0x06,                  // mov [0x0626], ah
  0xb0, 0x01,                              // mov al, 0x01
  0xe6, 0x80,                              // out 0x80, al            ; done
  0xfa,                                    // cli
  0xf4,                                    // hlt
  0x10, 0x00,                              // dap:    db 0x10, 0
  0x02, 0x00,                              // dw 2
  0x00, 0xfe, 0x00, 0x00,                  // dw 0xFE00, 0x0000
  0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dd 10, 0
  0x53, 0x54, 0x52,                        // str:    db "STR"
]);

/** Reads 127-sector chunks with INT 13h AH=42h from LBA 1 on; the word at offset 2 is the number of reads; port-80h markers 1 (start), 2 (done), EEh (failed). */
export const READBENCH_SECTOR = bootSector([
  // start:
  0xeb, 0x02,                              // jmp short main
  0x10, 0x00,                              // iterations: dw 16               ; patched by the harness: 127-sector reads to make
  // main:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  0x8e, 0xc0,                              // mov es, ax
  0xb0, 0x01,                              // mov al, 1
  0xe6, 0x80,                              // out 0x80, al            ; marker 1: start
  0x8b, 0x0e, 0x02, 0x7c,                  // mov cx, [iterations]
  // next:
  0x51,                                    // push cx
  0xbe, 0x37, 0x7c,                        // mov si, dap
  0xb4, 0x42,                              // mov ah, 0x42            ; extended read, 127 sectors to 1000:0000
  0xb2, 0x80,                              // mov dl, 0x80
  0xcd, 0x13,                              // int 0x13
  0x59,                                    // pop cx
  0x72, 0x12,                              // jc fail
  0x83, 0x06, 0x3f, 0x7c, 0x7f,            // add word [dap+8], 127   ; next LBA
  0x83, 0x16, 0x41, 0x7c, 0x00,            // adc word [dap+10], 0
  0xe2, 0xe7,                              // loop next
  0xb0, 0x02,                              // mov al, 2
  0xe6, 0x80,                              // out 0x80, al            ; marker 2: done
  0xfa,                                    // cli
  0xf4,                                    // hlt
  // fail:
  0xb0, 0xee,                              // mov al, 0xEE
  0xe6, 0x80,                              // out 0x80, al            ; marker EEh: a read failed
  0xfa,                                    // cli
  0xf4,                                    // hlt
  0x10, 0x00,                              // dap:    db 0x10, 0
  0x7f, 0x00,                              // dw 127
  0x00, 0x00, 0x00, 0x10,                  // dw 0x0000, 0x1000
  0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dd 1, 0
]);

/** INT 14h: initialise COM1 at 9600 8N1, poll for a byte, receive it, time out on the next, send the byte + 1. */
export const SERIAL_SECTOR = bootSector([
  // start:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  0xb8, 0xe3, 0x00,                        // mov ax, 0x00E3          ; INT 14h AH=00h: 9600 baud, no parity, 1 stop bit, 8 bits
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0xa3, 0x00, 0x06,                        // mov [0x0600], ax
  0xb0, 0x01,                              // mov al, 1
  0xe6, 0x80,                              // out 0x80, al            ; marker 1: initialised, waiting for input
  // poll:
  0xb4, 0x03,                              // mov ah, 0x03            ; status: data ready?
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0xf6, 0xc4, 0x01,                        // test ah, 0x01
  0x74, 0xf5,                              // jz poll
  0xb4, 0x02,                              // mov ah, 0x02            ; receive
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0xa3, 0x02, 0x06,                        // mov [0x0602], ax
  0xb4, 0x02,                              // mov ah, 0x02            ; nothing more: time-out (AH bit 7)
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0xa3, 0x04, 0x06,                        // mov [0x0604], ax
  0xb4, 0x01,                              // mov ah, 0x01            ; send 'Z' + 1
  0xa0, 0x02, 0x06,                        // mov al, [0x0602]
  0xfe, 0xc0,                              // inc al
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x14,                              // int 0x14
  0xfa,                                    // cli
  0xf4,                                    // hlt
]);

/** INT 1Ah ticks before and after three timer ticks, RTC time and date, INT 15h AH=86h wait, setting the RTC, INT 12h and INT 11h; results from 0000:0600. */
export const CLOCK_SECTOR = bootSector([
  // start:
  0x31, 0xc0,                              // xor ax, ax
  0x8e, 0xd8,                              // mov ds, ax
  0xb4, 0x00,                              // mov ah, 0x00            ; INT 1Ah: ticks since midnight in CX:DX
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x16, 0x00, 0x06,                  // mov [0x0600], dx
  0xfb,                                    // sti
  0xf4,                                    // hlt                     ; three timer ticks go by
  0xf4,                                    // hlt
  0xf4,                                    // hlt
  0xb4, 0x00,                              // mov ah, 0x00
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x16, 0x02, 0x06,                  // mov [0x0602], dx
  0xb4, 0x02,                              // mov ah, 0x02            ; RTC time: CH hours, CL minutes, DH seconds (BCD)
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x0e, 0x04, 0x06,                  // mov [0x0604], cx
  0x89, 0x16, 0x06, 0x06,                  // mov [0x0606], dx
  0xb4, 0x04,                              // mov ah, 0x04            ; RTC date: CH century, CL year, DH month, DL day (BCD)
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x0e, 0x08, 0x06,                  // mov [0x0608], cx
  0x89, 0x16, 0x0a, 0x06,                  // mov [0x060A], dx
  0xb4, 0x86,                              // mov ah, 0x86            ; INT 15h wait CX:DX = 00010000h microseconds (2 ticks)
  0xb9, 0x01, 0x00,                        // mov cx, 0x0001
  0x31, 0xd2,                              // xor dx, dx
  0xcd, 0x15,                              // int 0x15
  0xa3, 0x10, 0x06,                        // mov [0x0610], ax
  0xb4, 0x00,                              // mov ah, 0x00
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x16, 0x12, 0x06,                  // mov [0x0612], dx
  0xb4, 0x03,                              // mov ah, 0x03            ; set the RTC time to 09:15:30
  0xb9, 0x15, 0x09,                        // mov cx, 0x0915
  0xba, 0x00, 0x30,                        // mov dx, 0x3000
  0xcd, 0x1a,                              // int 0x1A
  0xb4, 0x05,                              // mov ah, 0x05            ; set the date to 1999-12-31
  0xb9, 0x99, 0x19,                        // mov cx, 0x1999
  0xba, 0x31, 0x12,                        // mov dx, 0x1231
  0xcd, 0x1a,                              // int 0x1A
  0xb4, 0x02,                              // mov ah, 0x02
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x0e, 0x14, 0x06,                  // mov [0x0614], cx
  0x89, 0x16, 0x16, 0x06,                  // mov [0x0616], dx
  0xb4, 0x04,                              // mov ah, 0x04
  0xcd, 0x1a,                              // int 0x1A
  0x89, 0x0e, 0x18, 0x06,                  // mov [0x0618], cx
  0x89, 0x16, 0x1a, 0x06,                  // mov [0x061A], dx
  0xcd, 0x12,                              // int 0x12                ; conventional memory in KiB
  0xa3, 0x0c, 0x06,                        // mov [0x060C], ax
  0xcd, 0x11,                              // int 0x11                ; equipment word
  0xa3, 0x0e, 0x06,                        // mov [0x060E], ax
  0xfa,                                    // cli
  0xf4,                                    // hlt
]);
