; diskex: xenlab's disk exerciser. Reads and writes sectors of the boot drive through INT 13h
; (AH 00, 01, 02, 03, 08, 15h, 41h, 42h, 43h, 48h) and prints one line per check, in a fixed
; form a test can parse:  NAME key=HEX key=HEX ...  (all numbers upper-case hex), then DONE,
; then powers off through APM.
;
; Boots as a boot sector (55AA at 510: the sector loads the payload from LBA 1 with AH=02) or as
; a flat PV kernel loaded whole at 0000:7C00 with DL = 80h (the payload is then already there).
;
; Checksum: sum = 0; for each little-endian 16-bit word w: sum = rol(sum, 1) + w  (mod 2^16).
; Write pattern (seed s): v = s; per sector: 512 bytes v, v+13, v+26, ... (mod 256), then v += 81.
; Disk areas touched: reads LBA 0..126 and 64..79; writes LBA 64..71 (AH=43h, seed 5Ah) and
; LBA 72..73 (AH=03h, seed A5h), so the disk needs at least 128 sectors.
        cpu 186
        bits 16
        org 0x7c00

MAGIC       equ 0x5844              ; 'DX' at the start of the payload
BUF_SEG     equ 0x1000              ; general read buffer       (linear 10000h)
BIG_SEG     equ 0x2000              ; 127-sector read buffer    (linear 20000h)
WR_SEG      equ 0x3000              ; write pattern             (linear 30000h)
ODD_SEG     equ 0x4000              ; unaligned-buffer reads    (linear 40000h)
DATA_LBA    equ 64

; ---------------------------------------------------------------- boot sector
start:
        jmp 0:.norm
.norm:  cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        sti
        mov [drive], dl
        cmp word [payload], MAGIC   ; loaded whole as a kernel?
        je main
        mov ax, 0x0200 + PAYLOAD_SECTORS
        mov cx, 0x0002              ; cylinder 0, sector 2 (= LBA 1)
        xor dh, dh
        mov bx, payload
        int 0x13
        jc .fail
        cmp word [payload], MAGIC
        je main
.fail:  mov si, loadfail
        cld
.p:     lodsb
        test al, al
        jz .h
        mov ah, 0x0e
        mov bx, 7
        int 0x10
        jmp .p
.h:     cli
        hlt
        jmp .h
loadfail: db 'DISKEX LOADFAIL', 13, 10, 0
drive:  db 0x80

        times 510 - ($ - $$) db 0
        dw 0xaa55

; ---------------------------------------------------------------- payload
payload:
        dw MAGIC
main:
        mov si, s_hello
        call puts
        mov al, [drive]
        call hex8
        call crlf

        ; AH=00h reset
        mov si, s_reset
        call puts
        mov ah, 0x00
        mov dl, [drive]
        int 0x13
        call cfah                   ; prints CF= AH=
        call crlf

        ; AH=41h extensions present?
        mov si, s_ext
        call puts
        mov ah, 0x41
        mov bx, 0x55aa
        mov dl, [drive]
        int 0x13
        pushf
        push cx
        push bx
        call cfah
        mov si, s_bx
        call puts
        pop ax
        call hex16
        mov si, s_cx
        call puts
        pop ax
        call hex16
        popf
        call crlf

        ; AH=08h geometry: print cylinders, heads, sectors per track (counts, not maxima)
        mov si, s_geom
        call puts
        mov ah, 0x08
        mov dl, [drive]
        push es
        int 0x13
        pop es
        push cx
        push dx
        call cfah
        pop dx
        pop cx
        mov al, cl
        and al, 0x3f
        mov [spt], al
        mov al, dh
        inc al
        mov [heads], al
        mov al, cl                  ; cylinders = ((CL & C0h) << 2 | CH) + 1
        shr al, 6
        mov ah, al
        mov al, ch
        inc ax
        push ax
        mov si, s_cyl
        call puts
        pop ax
        call hex16
        mov si, s_heads
        call puts
        mov al, [heads]
        call hex8
        mov si, s_spt
        call puts
        mov al, [spt]
        call hex8
        mov si, s_drives
        call puts
        ; DL was the number of drives; AH=08h returned it, but hex8 clobbered DX: re-ask
        mov ah, 0x08
        mov dl, [drive]
        push es
        int 0x13
        pop es
        mov al, dl
        call hex8
        call crlf

        ; AH=15h type and size
        mov si, s_type
        call puts
        mov ah, 0x15
        mov dl, [drive]
        int 0x13
        push dx
        push cx
        call cfah
        mov si, s_sectors
        call puts
        pop ax                      ; CX:DX = sectors
        call hex16
        pop ax
        call hex16
        call crlf

        ; AH=48h extended parameters
        mov si, s_param
        call puts
        mov word [edd], 0x1a
        mov ah, 0x48
        mov dl, [drive]
        mov si, edd
        int 0x13
        call cfah
        mov si, s_sectors
        call puts
        mov ax, [edd + 18]
        mov [total + 2], ax
        call hex16
        mov ax, [edd + 16]
        mov [total], ax
        call hex16
        mov si, s_bps
        call puts
        mov ax, [edd + 24]
        call hex16
        call crlf

        ; AH=02h: read LBA 0 (C/H/S 0/0/1), one sector
        mov si, s_read02
        call puts
        xor ax, ax
        call lbaout
        mov ax, 1
        call nout
        mov ax, BUF_SEG
        mov es, ax
        xor bx, bx
        mov ax, 0x0201
        mov cx, 0x0001
        xor dh, dh
        mov dl, [drive]
        int 0x13
        mov cx, 1
        call report

        ; AH=42h: read LBA 64..71
        mov si, s_read42
        call puts
        mov ax, DATA_LBA
        call lbaout
        mov ax, 8
        call nout
        mov ax, DATA_LBA
        mov cx, 8
        mov bx, BUF_SEG
        xor di, di
        call ext_read
        mov cx, 8
        call report

        ; AH=43h: write the pattern (seed 5Ah) to LBA 64..71, then read it back and compare
        mov ax, WR_SEG
        mov es, ax
        xor di, di
        mov cx, 8
        mov al, 0x5a
        call fill
        mov si, s_write43
        call puts
        mov ax, DATA_LBA
        call lbaout
        mov ax, 8
        call nout
        mov word [dap + 2], 8
        mov word [dap + 4], 0
        mov word [dap + 6], WR_SEG
        mov word [dap + 8], DATA_LBA
        mov ah, 0x43
        mov al, 0
        mov dl, [drive]
        mov si, dap
        int 0x13
        push WR_SEG                 ; (not mov ax: AH is the status being reported)
        pop es
        mov cx, 8
        call report

        mov si, s_verify42
        call puts
        mov ax, DATA_LBA
        call lbaout
        mov ax, 8
        call nout
        mov ax, DATA_LBA
        mov cx, 8
        mov bx, BUF_SEG
        xor di, di
        call ext_read
        mov cx, 8
        call report_cmp

        ; AH=03h: write the pattern (seed A5h) to LBA 72..73 by C/H/S, read back with AH=02h
        mov ax, WR_SEG
        mov es, ax
        xor di, di
        mov cx, 2
        mov al, 0xa5
        call fill
        mov si, s_write03
        call puts
        mov ax, DATA_LBA + 8
        call lbaout
        mov ax, 2
        call nout
        mov ax, DATA_LBA + 8
        call chs
        mov ax, WR_SEG
        mov es, ax
        xor bx, bx
        mov ax, 0x0302
        mov dl, [drive]
        int 0x13
        mov cx, 2
        call report

        mov si, s_verify02
        call puts
        mov ax, DATA_LBA + 8
        call lbaout
        mov ax, 2
        call nout
        mov ax, DATA_LBA + 8
        call chs
        mov ax, BUF_SEG
        mov es, ax
        xor bx, bx
        mov ax, 0x0202
        mov dl, [drive]
        int 0x13
        mov cx, 2
        call report_cmp

        ; AH=42h: 127 sectors from LBA 0 (more pages than one request's 11 segments)
        mov si, s_big42
        call puts
        xor ax, ax
        call lbaout
        mov ax, 127
        call nout
        xor ax, ax
        mov cx, 127
        mov bx, BIG_SEG
        xor di, di
        call ext_read
        mov cx, 127
        call report

        ; AH=42h into a buffer that starts mid-page (sector-aligned): LBA 64..79 at 4000:0E00
        mov si, s_mid42
        call puts
        mov ax, DATA_LBA
        call lbaout
        mov ax, 16
        call nout
        mov ax, DATA_LBA
        mov cx, 16
        mov bx, ODD_SEG
        mov di, 0x0e00
        call ext_read
        mov bx, 0x0e00
        mov cx, 16
        call report_at

        ; AH=42h into a buffer at an odd address: LBA 64..66 at 4000:1003
        mov si, s_odd42
        call puts
        mov ax, DATA_LBA
        call lbaout
        mov ax, 3
        call nout
        mov ax, DATA_LBA
        mov cx, 3
        mov bx, ODD_SEG
        mov di, 0x1003
        call ext_read
        mov bx, 0x1003
        mov cx, 3
        call report_at

        ; AH=42h past the end of the disk must fail; AH=01h then reports that status
        mov si, s_past42
        call puts
        mov ax, [total]
        mov dx, [total + 2]
        mov [dap + 8], ax
        mov [dap + 10], dx
        push ax
        mov ax, dx
        call hex16
        pop ax
        call hex16
        mov ax, 1
        call nout
        mov word [dap + 2], 1
        mov word [dap + 4], 0
        mov word [dap + 6], BUF_SEG
        mov ah, 0x42
        mov dl, [drive]
        mov si, dap
        int 0x13
        call cfah
        call crlf
        mov word [dap + 10], 0

        mov si, s_status01
        call puts
        mov ah, 0x01
        mov dl, [drive]
        int 0x13
        push ax
        mov si, s_ah
        call puts
        pop ax
        mov al, ah
        call hex8
        call crlf

        mov si, s_done
        call puts
        call poweroff

; ext_read: AH=42h, AX = LBA (below 65536), CX = count, BX:DI = buffer. Leaves CF/AH; ES = BX.
ext_read:
        mov [dap + 8], ax
        mov [dap + 2], cx
        mov [dap + 4], di
        mov [dap + 6], bx
        mov es, bx
        mov ah, 0x42
        mov dl, [drive]
        mov si, dap
        int 0x13
        ret

; chs: AX = LBA -> CH, CL, DH for AH=02h/03h using the AH=08h geometry.
chs:
        xor dx, dx
        mov bl, [spt]
        xor bh, bh
        div bx                      ; AX = LBA / spt, DX = LBA % spt
        inc dx
        mov cl, dl                  ; sector (1-based)
        xor dx, dx
        mov bl, [heads]
        div bx                      ; AX = cylinder, DX = head
        mov dh, dl
        mov ch, al
        shl ah, 6
        or cl, ah
        ret

; fill: ES:DI = buffer, CX = sectors, AL = seed (see the header).
fill:
        cld
.sec:   push cx
        mov cx, 512
.b:     stosb
        add al, 13
        loop .b
        add al, 81
        pop cx
        loop .sec
        ret

; cfah: print " CF=x AH=yy" for the flags and AH of the last INT 13h. Clobbers AX BX CX DX SI.
cfah:
        pushf
        push ax
        mov si, s_cf
        call puts
        pop ax
        popf
        push ax
        mov al, 0
        adc al, 0
        call hex8
        mov si, s_ah
        call puts
        pop ax
        mov al, ah
        jmp hex8

lbaout:                             ; " LBA=0000xxxx"
        push ax
        mov si, s_lba
        call puts
        xor ax, ax
        call hex16
        pop ax
        jmp hex16
nout:                               ; " N=xx"
        push ax
        mov si, s_n
        call puts
        pop ax
        jmp hex8

; report: after an INT 13h, print " CF=x AH=yy SUM=zzzz" for CX sectors at ES:0, and CRLF.
report:
        mov bx, 0                   ; (not xor: the flags are the result being reported)
report_at:                          ; ... at ES:BX
        pushf
        push ax
        push bx
        push cx
        mov si, s_cf
        call puts
        pop cx
        pop bx
        pop ax
        popf
        push bx
        push cx
        push ax
        mov al, 0
        adc al, 0
        call hex8
        mov si, s_ah
        call puts
        pop ax
        mov al, ah
        call hex8
        mov si, s_sum
        call puts
        pop cx
        pop bx
        call checksum
        call hex16
        jmp crlf

; report_cmp: like report, then " OK" if CX sectors at ES:0 equal those at WR_SEG:0, else " BAD".
report_cmp:
        push cx
        call report.cmp_entry
        pop cx
        ret
report.cmp_entry:
        push cx
        pushf
        push ax
        mov si, s_cf
        call puts
        pop ax
        popf
        push ax
        mov al, 0
        adc al, 0
        call hex8
        mov si, s_ah
        call puts
        pop ax
        mov al, ah
        call hex8
        mov si, s_sum
        call puts
        pop cx
        push cx
        xor bx, bx
        call checksum
        call hex16
        pop cx
        mov ax, cx
        mov cl, 8
        shl ax, cl                  ; sectors * 256 words
        mov cx, ax
        push ds
        mov ax, es
        mov ds, ax
        mov ax, WR_SEG
        mov es, ax
        xor si, si
        xor di, di
        cld
        repe cmpsw
        pop ds
        mov si, s_ok
        je .same
        mov si, s_bad
.same:  call puts
        jmp crlf

; checksum: AX = rol-add sum of CX sectors at ES:BX.
checksum:
        push ds
        push si
        mov ax, es
        mov ds, ax
        mov si, bx
        mov ax, cx
        mov cl, 8
        shl ax, cl
        mov cx, ax
        xor dx, dx
        cld
.w:     lodsw
        rol dx, 1
        add dx, ax
        loop .w
        mov ax, dx
        pop si
        pop ds
        ret

%include "lib.inc"

s_hello:    db 'DISKEX 1 DRIVE=', 0
s_reset:    db 'RESET00', 0
s_ext:      db 'EXT41', 0
s_bx:       db ' BX=', 0
s_cx:       db ' CX=', 0
s_geom:     db 'GEOM08', 0
s_cyl:      db ' CYL=', 0
s_heads:    db ' HEADS=', 0
s_spt:      db ' SPT=', 0
s_drives:   db ' DRIVES=', 0
s_type:     db 'TYPE15', 0
s_param:    db 'PARAM48', 0
s_sectors:  db ' SECTORS=', 0
s_bps:      db ' BPS=', 0
s_read02:   db 'READ02', 0
s_read42:   db 'READ42', 0
s_write43:  db 'WRITE43', 0
s_verify42: db 'VERIFY42', 0
s_write03:  db 'WRITE03', 0
s_verify02: db 'VERIFY02', 0
s_big42:    db 'BIG42', 0
s_mid42:    db 'MID42', 0
s_odd42:    db 'ODD42', 0
s_past42:   db 'PAST42 LBA=', 0
s_status01: db 'STATUS01', 0
s_done:     db 'DONE', 13, 10, 0
s_cf:       db ' CF=', 0
s_ah:       db ' AH=', 0
s_lba:      db ' LBA=', 0
s_n:        db ' N=', 0
s_sum:      db ' SUM=', 0
s_ok:       db ' OK', 0
s_bad:      db ' BAD', 0

spt:    db 0
heads:  db 0
total:  dd 0
        align 2
dap:    db 16, 0
        dw 0, 0, 0
        dd 0, 0
edd:    times 0x1a db 0

        align 512
payload_end:
PAYLOAD_SECTORS equ (payload_end - payload) / 512
