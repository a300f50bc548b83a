; boot: boot-to-first-output, for the PV vs HVM benchmark. One boot sector that prints one line
; immediately and powers off; the harness measures the time from starting the guest to this line
; (on HVM that includes the virtual BIOS's POST and loading this sector; on PV the shim's set-up
; and loading the sector through blkfront).
; Prints  BENCH name=boot  and powers off through APM.
        cpu 186
        bits 16
        org 0x7c00
start:
        jmp short boot
        dw 'XB'
        dd 0, 0, 0                  ; no parameters
        dw 0                        ; no payload
boot:
        jmp 0:.norm
.norm:  cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        sti
        mov si, line
        call puts
        jmp poweroff
line:   db 'BENCH name=boot', 13, 10, 0

%include "lib.inc"
        times 510 - ($ - $$) db 0
        dw 0xaa55
