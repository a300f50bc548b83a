; echo: reads a line from the keyboard (INT 16h) and echoes it back, with what the BIOS says
; about the machine (INT 11h equipment, INT 12h memory, INT 1Ah ticks), then powers off.
; On a PV guest the keys come from the console (`xl console`), on HVM from the PS/2 keyboard.
; Output, one line each:  ECHO 1 MEM=xxxx EQUIP=xxxx / KEY=xxxx (scan|ascii of each key) /
; LINE=<text> / TICKS=xxxxxxxx / DONE.  Enter or Esc ends the line; at most 60 characters.
        cpu 186
        bits 16
        org 0x7c00

MAXLEN  equ 60

start:
        jmp 0:.norm
.norm:  cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        sti
        mov si, s_hello
        call puts
        int 0x12
        call hex16
        mov si, s_equip
        call puts
        int 0x11
        call hex16
        call crlf

        xor di, di                  ; characters stored
.key:   mov ah, 0x01                ; anything waiting? (ZF=1: no) -- then block in AH=00h
        int 0x16
        mov ah, 0x00
        int 0x16
        push ax
        mov si, s_key
        call puts
        pop ax
        push ax
        call hex16
        call crlf
        pop ax
        cmp al, 13
        je .done
        cmp al, 27
        je .done
        cmp di, MAXLEN
        jae .key
        mov [line + di], al
        inc di
        jmp .key
.done:  mov byte [line + di], 0
        mov si, s_line
        call puts
        mov si, line
        call puts
        call crlf
        mov si, s_ticks
        call puts
        mov ah, 0x00
        int 0x1a
        push dx
        mov ax, cx
        call hex16
        pop ax
        call hex16
        call crlf
        mov si, s_done
        call puts
        call poweroff

%include "lib.inc"

s_hello: db 'ECHO 1 MEM=', 0
s_equip: db ' EQUIP=', 0
s_key:   db 'KEY=', 0
s_line:  db 'LINE=', 0
s_ticks: db 'TICKS=', 0
s_done:  db 'DONE', 13, 10, 0
line:    times MAXLEN + 1 db 0

        times 510 - ($ - $$) db 0
        dw 0xaa55
