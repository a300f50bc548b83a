; console: console output of a large text, for the PV vs HVM benchmark.
; Prints P1 lines of LINE_LEN bytes each through INT 10h AH=0Eh:
;   "Lxxxx The quick brown fox jumps over the lazy dog. 0123456789 ABCDEF\r\n" (xxxx = hex line no.)
; Prints  BEGIN name=console  first and  BENCH name=console lines=N bytes=B ticks=T  at the end,
; and powers off through APM.
        cpu 186
        bits 16
        org 0x7c00
P1_DEFAULT equ 2000                 ; lines (P1 low word; at most 65535)
P2_DEFAULT equ 0
P3_DEFAULT equ 0
%include "bench.inc"
        BENCH_BOOT

main:
        mov si, name
        call begin
        xor ax, ax
        mov [line], ax
.loop:  mov ax, [line]
        cmp ax, [param1]
        jae .done
        mov al, 'L'
        call putc
        mov ax, [line]
        call hex16
        mov si, text
        call puts
        inc word [line]
        jmp .loop
.done:  call tick_stop
        mov si, name
        call result
        mov ax, [param1]
        xor dx, dx
        mov si, s_lines
        call putkv
        mov ax, [param1]
        mov cx, LINE_LEN
        mul cx
        mov si, s_bytes
        call putkv
        call put_ticks
        call crlf
        jmp poweroff

name:    db 'console', 0
s_lines: db ' lines=', 0
s_bytes: db ' bytes=', 0
line:    dw 0
text:    db ' The quick brown fox jumps over the lazy dog. 0123456789 ABCDEF', 13, 10, 0
LINE_LEN equ 5 + ($ - text - 1)

%include "lib.inc"
%include "bench-lib.inc"
        BENCH_END
