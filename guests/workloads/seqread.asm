; seqread: sequential disk read of a large range in big requests, for the PV vs HVM benchmark.
; Reads P1 sectors from LBA 64 (the data area) with INT 13h AH=42h, P2 sectors per call (127
; by default: the most one BIOS call moves) into 2000:0000, and checksums the first word of every
; sector (csum = rol(csum, 1) + word; the runner stamps each data sector's first word with its
; LBA's low 16 bits, so it can compute the expected value).
; Prints  BEGIN name=seqread  then  BENCH name=seqread sectors=N bytes=B calls=C ticks=T csum=XXXX
; and powers off through APM. Boots as a boot sector or as a flat kernel (bench.inc).
        cpu 186
        bits 16
        org 0x7c00
P1_DEFAULT equ 32768                ; sectors to read (16 MiB)
P2_DEFAULT equ 127                  ; sectors per INT 13h call
P3_DEFAULT equ 0
%include "bench.inc"
        BENCH_BOOT

main:
        mov si, name
        call begin
        mov ax, [param1]
        mov [remain], ax
        mov ax, [param1 + 2]
        mov [remain + 2], ax
.loop:  mov ax, [remain]
        or ax, [remain + 2]
        jz .done
        mov ax, [param2]            ; n = min(P2, remain)
        cmp word [remain + 2], 0
        jne .n
        cmp ax, [remain]
        jbe .n
        mov ax, [remain]
.n:     mov [dap + 2], ax
        mov word [dap + 4], 0
        mov word [dap + 6], BUF_SEG
        mov ax, [lba]
        mov [dap + 8], ax
        mov ax, [lba + 2]
        mov [dap + 10], ax
        mov si, dap
        mov ah, 0x42
        mov dl, [drive]
        int 0x13
        jc .err
        inc word [calls]
        mov cx, [dap + 2]
        push cx
        call csum_sectors
        pop cx
        add [lba], cx
        adc word [lba + 2], 0
        sub [remain], cx
        sbb word [remain + 2], 0
        jmp .loop
.err:   mov si, name
        jmp fail_line
.done:  call tick_stop
        mov si, name
        call result
        mov ax, [param1]
        mov dx, [param1 + 2]
        mov si, s_sectors
        call putkv
        mov ax, [param1]
        mov dx, [param1 + 2]
        call shl9
        mov si, s_bytes
        call putkv
        mov ax, [calls]
        xor dx, dx
        mov si, s_calls
        call putkv
        call put_ticks_csum
        jmp poweroff

name:      db 'seqread', 0
s_sectors: db ' sectors=', 0
s_bytes:   db ' bytes=', 0
s_calls:   db ' calls=', 0
remain:    dd 0
lba:       dd DATA_LBA
calls:     dw 0
dap:       db 16, 0
           dw 0, 0, 0
           dd 0, 0

%include "lib.inc"
%include "bench-lib.inc"
        BENCH_END
