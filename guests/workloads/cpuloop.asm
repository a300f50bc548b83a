; cpuloop: a CPU-bound loop, for the PV vs HVM benchmark: no I/O between BEGIN and BENCH, so both
; paths should take the same time (same instructions, same CPU).
; P1 iterations of a register ALU mix plus one memory read-modify-write; the checksum of the
; registers at the end depends on every iteration.
; Prints  BEGIN name=cpuloop  then  BENCH name=cpuloop iterations=N ticks=T csum=XXXX
; and powers off through APM.
        cpu 186
        bits 16
        org 0x7c00
P1_DEFAULT equ 2000000              ; iterations (about 13 instructions each)
P2_DEFAULT equ 0
P3_DEFAULT equ 0
%include "bench.inc"
        BENCH_BOOT

main:
        mov si, name
        call begin
        mov bx, [param1]
        mov bp, [param1 + 2]
        xor ax, ax
        mov dx, 1
        mov si, 0x1234
        mov di, acc
.loop:  add ax, dx
        rol ax, 1
        xor dx, ax
        add si, dx
        adc [di], si
        inc dx
        sub bx, 1
        sbb bp, 0
        mov cx, bx
        or cx, bp
        jnz .loop
        xor ax, si
        xor ax, [acc]
        mov [csum], ax
        call tick_stop
        mov si, name
        call result
        mov ax, [param1]
        mov dx, [param1 + 2]
        mov si, s_iter
        call putkv
        call put_ticks_csum
        jmp poweroff

name:   db 'cpuloop', 0
s_iter: db ' iterations=', 0
acc:    dw 0

%include "lib.inc"
%include "bench-lib.inc"
        BENCH_END
