; hello: xenlab's smallest guest. Prints one line through INT 10h and powers off through APM.
; Boots as a boot sector (55AA at 510) or as a flat PV kernel loaded at 0000:7C00 with DL = 80h.
        cpu 186
        bits 16
        org 0x7c00

start:
        jmp 0:.norm                 ; some loaders enter at 07C0:0000; make CS 0
.norm:  cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        sti
        mov si, message
        call puts
        call poweroff

%include "lib.inc"

message: db 'Hello from a xenlab guest!', 13, 10, 0

        times 510 - ($ - $$) db 0
        dw 0xaa55
