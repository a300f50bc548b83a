; randread: random 4 KiB disk reads, for the PV vs HVM benchmark.
; P1 reads of 8 sectors each (INT 13h AH=42h into 2000:0000) at LBA 64 + 8 * block, where
; x = x * 25173 + 13849 (mod 2^16, x starts at P3) and block = (x >> 3) AND P2 (P2 = number of
; 4 KiB blocks in the span - 1, a power of two minus one, at most 1FFFh).
; csum = rol(csum, 1) + first word of each block read (the runner stamps every data sector's first
; word with its LBA's low 16 bits, so it can replay the sequence and compute the expected value).
; Prints  BEGIN name=randread  then  BENCH name=randread ops=N bytes=B ticks=T csum=XXXX
; and powers off through APM.
        cpu 186
        bits 16
        org 0x7c00
P1_DEFAULT equ 2048                 ; reads
P2_DEFAULT equ 0x07ff               ; span: 2048 blocks of 4 KiB (8 MiB)
P3_DEFAULT equ 1                    ; LCG seed
%include "bench.inc"
        BENCH_BOOT

main:
        mov si, name
        call begin
        mov ax, [param3]
        mov [x], ax
        mov ax, [param1]
        mov [remain], ax
        mov ax, [param1 + 2]
        mov [remain + 2], ax
.loop:  mov ax, [remain]
        or ax, [remain + 2]
        jz .done
        mov ax, [x]                 ; x = x * 25173 + 13849
        mov cx, 25173
        mul cx
        add ax, 13849
        mov [x], ax
        shr ax, 3
        and ax, [param2]
        xor dx, dx                  ; LBA = 64 + block * 8 (32-bit)
        mov cx, 3
.sh:    shl ax, 1
        rcl dx, 1
        loop .sh
        add ax, DATA_LBA
        adc dx, 0
        mov [dap + 8], ax
        mov [dap + 10], dx
        mov word [dap + 2], 8
        mov word [dap + 4], 0
        mov word [dap + 6], BUF_SEG
        mov si, dap
        mov ah, 0x42
        mov dl, [drive]
        int 0x13
        jc .err
        mov cx, 1
        call csum_sectors
        sub word [remain], 1
        sbb word [remain + 2], 0
        jmp .loop
.err:   mov si, name
        jmp fail_line
.done:  call tick_stop
        mov si, name
        call result
        mov ax, [param1]
        mov dx, [param1 + 2]
        mov si, s_ops
        call putkv
        mov ax, [param1]            ; bytes = ops * 4096
        mov dx, [param1 + 2]
        mov cx, 12
.b:     shl ax, 1
        rcl dx, 1
        loop .b
        mov si, s_bytes
        call putkv
        call put_ticks_csum
        jmp poweroff

name:      db 'randread', 0
s_ops:     db ' ops=', 0
s_bytes:   db ' bytes=', 0
remain:    dd 0
x:         dw 0
dap:       db 16, 0
           dw 0, 0, 0
           dd 0, 0

%include "lib.inc"
%include "bench-lib.inc"
        BENCH_END
