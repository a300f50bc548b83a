; =============================================================================================
; xenlab virtual BIOS
;
; The firmware an HVM guest runs first. qemu-dm loads this 64 KiB image at F0000h, so the CPU's
; reset vector F000:FFF0 lands in its last 16 bytes. It is ordinary x86 code for the 80186 (no
; 286/386 instructions: `cpu 186` below makes nasm refuse them), and it reaches the hardware the
; way any guest does: port I/O and memory-mapped text memory, each access an exit to the
; hypervisor and from there an ioreq to qemu-dm's device models.
;
; Read docs/virtual-bios.md first; it walks through POST and every service. The reference for
; what a PC BIOS must provide is shared/reference/bios.md. This file was written for xenlab from
; the IBM PC/AT technical references, the ATA-6 and PIIX4 specifications, Ralf Brown's interrupt
; list and the APM 1.2 specification; no code from another BIOS is used.
;
; Layout of the image (segment F000h, offsets below):
;   0000h          signature string
;   0010h ...      POST, interrupt service routines, helpers, tables, strings
;   FFF0h          reset vector: far jump to POST
;   FFF5h          BIOS date ("11/21/26")
;   FFFEh          model byte FCh (PC/AT)
;
; Memory the BIOS sets up (see docs/virtual-bios.md, "Memory map"):
;   0000:0000      interrupt vector table (256 far pointers)
;   0040:0000      BIOS data area (BDA)
;   0000:7C00      boot sector is loaded here; the POST stack grows down from here
;   EBDA           1 KiB just below the top of conventional memory (9FC0:0000 with 640 KiB):
;                  disk geometry, bus-master PRD table, IDENTIFY buffer
;   B800:0000      colour text memory (VGA device model in qemu-dm)
; =============================================================================================

        bits 16
        cpu 186
        org 0

; ---- hardware: ports of the device models (qemu-dm/README.md, "Port map") -------------------
PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xA0
PIC2_DATA       equ 0xA1
PIT_CH0         equ 0x40
PIT_MODE        equ 0x43
KBC_DATA        equ 0x60
KBC_STATUS      equ 0x64
CMOS_INDEX      equ 0x70
CMOS_DATA       equ 0x71
ATA_DATA        equ 0x1F0
ATA_ERROR       equ 0x1F1
ATA_COUNT       equ 0x1F2
ATA_LBA0        equ 0x1F3
ATA_LBA1        equ 0x1F4
ATA_LBA2        equ 0x1F5
ATA_DEVICE      equ 0x1F6
ATA_STATUS      equ 0x1F7           ; read: status, write: command
ATA_CONTROL     equ 0x3F6           ; write: device control (bit 1 nIEN, bit 2 SRST)
BM_COMMAND      equ 0xC000          ; bus-master IDE (fixed base in xenlab)
BM_STATUS       equ 0xC002
BM_PRDT         equ 0xC004
COM1            equ 0x3F8
CRTC_INDEX      equ 0x3D4
CRTC_DATA       equ 0x3D5
PM1A_CNT        equ 0xB004          ; ACPI PM1a control: SLP_EN|SLP_TYP=S5 powers off
DEBUG_PORT      equ 0xE9            ; BIOS messages for the host log

; ATA status bits and commands
ATA_SR_BSY      equ 0x80
ATA_SR_DRQ      equ 0x08
ATA_SR_ERR      equ 0x01
ATA_CMD_READ    equ 0x20            ; READ SECTORS (PIO)
ATA_CMD_WRITE   equ 0x30            ; WRITE SECTORS (PIO)
ATA_CMD_READ_MULTIPLE  equ 0xC4
ATA_CMD_WRITE_MULTIPLE equ 0xC5
ATA_CMD_SET_MULTIPLE   equ 0xC6
ATA_CMD_READ_DMA  equ 0xC8
ATA_CMD_WRITE_DMA equ 0xCA
ATA_CMD_IDENTIFY  equ 0xEC

; CMOS registers
CMOS_SECONDS    equ 0x00
CMOS_MINUTES    equ 0x02
CMOS_HOURS      equ 0x04
CMOS_DAY        equ 0x07
CMOS_MONTH      equ 0x08
CMOS_YEAR       equ 0x09
CMOS_REG_A      equ 0x0A
CMOS_REG_B      equ 0x0B
CMOS_BASE_LO    equ 0x15
CMOS_EXT_LO     equ 0x30
CMOS_CENTURY    equ 0x32
CMOS_BOOT_ORDER equ 0x3D
CMOS_XENLAB     equ 0x70            ; xenlab BIOS options: bit 0 = INT 13h uses bus-master DMA,
                                    ; bit 1 = PIO uses READ/WRITE MULTIPLE (16-sector blocks)

; ---- BIOS data area (segment 0040h), shared/reference/bios.md §3 ----------------------------
BDA_SEG         equ 0x40
BDA_COM1        equ 0x00
BDA_EBDA_SEG    equ 0x0E
BDA_EQUIPMENT   equ 0x10
BDA_MEMORY_KB   equ 0x13
BDA_KBD_FLAGS1  equ 0x17
BDA_KBD_FLAGS2  equ 0x18
BDA_KBD_HEAD    equ 0x1A
BDA_KBD_TAIL    equ 0x1C
BDA_KBD_BUF     equ 0x1E
BDA_MOTOR_COUNT equ 0x40
BDA_VIDEO_MODE  equ 0x49
BDA_VIDEO_COLS  equ 0x4A
BDA_PAGE_SIZE   equ 0x4C
BDA_PAGE_START  equ 0x4E
BDA_CURSOR_POS  equ 0x50            ; 8 words: low byte column, high byte row
BDA_CURSOR_TYPE equ 0x60
BDA_ACTIVE_PAGE equ 0x62
BDA_CRTC_BASE   equ 0x63
BDA_TICKS       equ 0x6C            ; dword
BDA_MIDNIGHT    equ 0x70
BDA_DISK_STATUS equ 0x74
BDA_NUM_DISKS   equ 0x75
BDA_COM_TIMEOUT equ 0x7C
BDA_KBD_START   equ 0x80
BDA_KBD_END     equ 0x82
BDA_ROWS        equ 0x84
BDA_CHAR_HEIGHT equ 0x85
BDA_KBD_MODE    equ 0x96            ; bit 1: last byte was an E0 prefix, bit 4: 101-key keyboard

; ---- extended BIOS data area (1 KiB, segment in BDA 0Eh) ------------------------------------
EBDA_KB         equ 1
E_FLAGS         equ 0x10            ; byte: bit 0 = use bus-master DMA, bit 1 = PIO in 16-sector blocks
E_TOTAL         equ 0x12            ; dword: sectors on the disk (IDENTIFY words 60-61)
E_CYLS          equ 0x16            ; word: BIOS (translated) geometry used by INT 13h CHS calls
E_HEADS         equ 0x18
E_SPT           equ 0x1A
E_LBA           equ 0x1C            ; dword: current transfer start
E_COUNT         equ 0x20            ; word: current transfer length in sectors
E_DIR           equ 0x22            ; byte: 0 read, 1 write
E_FDPT          equ 0x30            ; 16 bytes: fixed disk parameter table (INT 41h)
E_PRD           equ 0x40            ; bus-master PRD table (8-byte entries)
E_IDENT         equ 0x200           ; 512 bytes: IDENTIFY DEVICE data

TICKS_PER_DAY_HI equ 0x0018         ; 1800B0h ticks = 24 hours at 18.2065 Hz
TICKS_PER_DAY_LO equ 0x00B0

; Interrupt service routines keep the caller's registers in a frame: `push ds / push es /
; pusha` then `mov bp, sp`. Results are written into the frame and come back with popa.
%define F_DI    bp+0
%define F_BP_SAVED bp+4
%define F_SI    bp+2
%define F_BX    bp+8
%define F_BL    bp+8
%define F_BH    bp+9
%define F_DX    bp+10
%define F_DL    bp+10
%define F_DH    bp+11
%define F_CX    bp+12
%define F_CL    bp+12
%define F_CH    bp+13
%define F_AX    bp+14
%define F_AL    bp+14
%define F_AH    bp+15
%define F_ES    bp+16
%define F_DS    bp+18
%define F_FLAGS bp+24

%macro SVC_ENTER 0
        push ds
        push es
        pusha
        mov bp, sp
        cld
%endmacro

; Load DS with the EBDA segment (found through the BDA, as every BIOS does).
%macro LOAD_EBDA_DS 0
        push ax
        mov ax, BDA_SEG
        mov ds, ax
        mov ds, [BDA_EBDA_SEG]
        pop ax
%endmacro

signature:
        db "xenlab BIOS 0.1", 0

; =============================================================================================
; POST: power-on self test. Entered from the reset vector with interrupts off.
; =============================================================================================
post:
        cli
        cld
        xor ax, ax
        mov ss, ax
        mov sp, 0x7C00
        mov ds, ax
        mov es, ax
        mov si, msg_dbg_post
        call dbg_puts

        ; ---- 1. Interrupt vector table: every vector gets a harmless default --------------
        xor di, di
        mov cx, 256
.ivt_default:
        mov ax, default_iret
        stosw
        mov ax, cs
        stosw
        loop .ivt_default
        ; hardware interrupts without a driver still need an end-of-interrupt
        mov di, 0x08 * 4
        mov cx, 8
.ivt_irq_master:
        mov word [di], irq_master_default
        add di, 4
        loop .ivt_irq_master
        mov di, 0x70 * 4
        mov cx, 8
.ivt_irq_slave:
        mov word [di], irq_slave_default
        add di, 4
        loop .ivt_irq_slave
        ; the services (vector, handler) from the table at the end of the image
        mov si, vector_table
.ivt_services:
        cs lodsb
        cmp al, 0xFF
        je .ivt_done
        xor ah, ah
        shl ax, 2
        mov di, ax
        cs lodsw
        mov [di], ax
        mov [di+2], cs
        jmp .ivt_services
.ivt_done:

        ; ---- 2. BIOS data area ------------------------------------------------------------
        mov ax, BDA_SEG
        mov es, ax
        xor di, di
        xor ax, ax
        mov cx, 128
        rep stosw                       ; clear 0040:0000-00FF
        mov ax, BDA_SEG
        mov ds, ax
        mov word [BDA_COM1], COM1
        mov word [BDA_EQUIPMENT], 0x0220  ; 1 serial port, 80x25 colour, no floppy, no FPU
        mov word [BDA_KBD_HEAD], BDA_KBD_BUF
        mov word [BDA_KBD_TAIL], BDA_KBD_BUF
        mov word [BDA_KBD_START], BDA_KBD_BUF
        mov word [BDA_KBD_END], BDA_KBD_BUF + 32
        mov byte [BDA_KBD_MODE], 0x10   ; 101/102-key keyboard
        mov byte [BDA_COM_TIMEOUT], 1
        mov word [BDA_CRTC_BASE], CRTC_INDEX

        ; ---- 3. Memory size from CMOS, EBDA at the top of conventional memory -------------
        mov al, CMOS_BASE_LO + 1
        call cmos_read
        mov ah, al
        mov al, CMOS_BASE_LO
        call cmos_read                  ; AX = base memory in KiB
        cmp ax, 640
        jbe .mem_ok
        mov ax, 640
.mem_ok:
        sub ax, EBDA_KB
        mov [BDA_MEMORY_KB], ax
        shl ax, 6                       ; KiB → paragraphs
        mov [BDA_EBDA_SEG], ax
        mov es, ax
        xor di, di
        xor ax, ax
        mov cx, EBDA_KB * 512
        rep stosw                       ; clear the EBDA
        mov byte [es:0], EBDA_KB        ; first byte: EBDA size in KiB

        ; ---- 4. Interrupt controllers (8259A pair): IRQ 0-7 → INT 08h-0Fh, 8-15 → 70h-77h --
        mov al, 0x11                    ; ICW1: edge triggered, cascade, ICW4 follows
        out PIC1_CMD, al
        out PIC2_CMD, al
        mov al, 0x08                    ; ICW2: vector bases
        out PIC1_DATA, al
        mov al, 0x70
        out PIC2_DATA, al
        mov al, 0x04                    ; ICW3: slave on IRQ 2
        out PIC1_DATA, al
        mov al, 0x02
        out PIC2_DATA, al
        mov al, 0x01                    ; ICW4: 8086 mode
        out PIC1_DATA, al
        out PIC2_DATA, al
        mov al, 0xF8                    ; unmask IRQ 0 (timer), 1 (keyboard), 2 (cascade)
        out PIC1_DATA, al
        mov al, 0xFF                    ; slave: all masked (the BIOS polls the disk)
        out PIC2_DATA, al

        ; ---- 5. Timer (8254 channel 0): mode 3, divisor 65536 → 18.2 Hz ---------------------
        mov al, 0x36
        out PIT_MODE, al
        xor al, al
        out PIT_CH0, al
        out PIT_CH0, al

        ; ---- 6. COM1: 115200 baud, 8N1, FIFOs on, no interrupts (INT 14h polls) -----------
        mov dx, COM1 + 3
        mov al, 0x80                    ; DLAB
        out dx, al
        mov dx, COM1
        mov al, 1                       ; divisor 1 = 115200 baud
        out dx, al
        inc dx
        xor al, al
        out dx, al
        mov dx, COM1 + 3
        mov al, 0x03                    ; 8 data bits, no parity, 1 stop bit
        out dx, al
        mov dx, COM1 + 2
        mov al, 0x07                    ; enable and clear FIFOs
        out dx, al
        mov dx, COM1 + 4
        mov al, 0x03                    ; DTR, RTS
        out dx, al

        ; ---- 7. Keyboard controller: self test, then scanning with translation and IRQ 1 ---
        mov al, 0xAD                    ; keyboard interface off while we talk to the 8042
        call kbc_command
        mov al, 0x60                    ; command byte: no keyboard IRQ during the test
        call kbc_command
        mov al, 0x44
        call kbc_write_data
        mov al, 0xAA
        call kbc_command
        call kbc_read                   ; 55h when the controller is healthy
        mov al, 0x60                    ; write command byte
        call kbc_command
        mov al, 0x45                    ; translate to set 1, system flag, keyboard IRQ on
        call kbc_write_data
        mov al, 0xAE                    ; enable the keyboard interface
        call kbc_command

        ; ---- 8. Video: mode 03h (80x25 colour text) -------------------------------------
        mov ax, 0x0003
        int 0x10

        ; ---- 9. Clock: RTC in BCD 24-hour mode, tick count from the time of day ---------
        mov al, CMOS_REG_B
        mov ah, 0x02
        call cmos_write
        call rtc_to_ticks

        ; ---- 10. Hard disk: IDENTIFY, geometry, DMA choice -------------------------------
        call disk_init

        ; ---- 11. Banner, then boot -------------------------------------------------------
        sti
        mov si, msg_banner
        call con_puts
        mov si, msg_memory
        call con_puts
        mov ax, BDA_SEG
        mov ds, ax
        mov ax, [BDA_MEMORY_KB]
        xor dx, dx
        call con_put_dec32
        mov si, msg_kb
        call con_puts
        cmp byte [BDA_NUM_DISKS], 0
        je .no_disk_banner
        mov si, msg_disk
        call con_puts
        LOAD_EBDA_DS
        mov ax, [E_TOTAL]
        mov dx, [E_TOTAL+2]
        call con_put_dec32
        mov si, msg_sectors_pio
        test byte [E_FLAGS], 2
        jz .not_multiple
        mov si, msg_sectors_multiple
.not_multiple:
        test byte [E_FLAGS], 1
        jz .say_mode
        mov si, msg_sectors_dma
.say_mode:
        call con_puts
.no_disk_banner:
        mov si, msg_dbg_boot
        call dbg_puts
        int 0x19
        jmp halt_forever

; =============================================================================================
; INT 19h — bootstrap loader: LBA 0 of the first hard disk to 0000:7C00, check 55AAh, jump.
; =============================================================================================
int19_handler:
        xor ax, ax
        mov ds, ax
        mov es, ax
        cli
        mov ss, ax
        mov sp, 0x7C00
        sti
        mov ax, BDA_SEG
        mov ds, ax
        cmp byte [BDA_NUM_DISKS], 0
        je .no_disk
        ; CMOS 3Dh low nibble = first boot device (2 = hard disk); only disks are bootable here
        mov al, CMOS_BOOT_ORDER
        call cmos_read
        and al, 0x0F
        jz .try_disk                    ; not set: default to the disk
        cmp al, 2
        je .try_disk
        mov si, msg_boot_other
        call con_puts
.try_disk:
        mov si, msg_booting
        call con_puts
        xor ax, ax
        mov es, ax
        mov bx, 0x7C00
        mov ax, 0x0201                  ; read 1 sector
        mov cx, 0x0001                  ; cylinder 0, sector 1
        mov dx, 0x0080                  ; head 0, drive 80h
        int 0x13
        jc .read_failed
        xor ax, ax
        mov ds, ax
        cmp word [0x7DFE], 0xAA55
        jne .no_signature
        mov si, msg_dbg_jump
        call dbg_puts
        xor ax, ax
        mov ds, ax
        mov es, ax
        xor bx, bx
        xor cx, cx
        xor si, si
        xor di, di
        xor bp, bp
        mov dx, 0x0080                  ; DL = boot drive
        jmp 0x0000:0x7C00
.no_signature:
        mov si, msg_no_signature
        jmp fatal
.read_failed:
        mov si, msg_read_failed
        jmp fatal
.no_disk:
        mov si, msg_no_disk
        jmp fatal

; INT 18h — no bootable device.
int18_handler:
        mov si, msg_no_boot_device
        ; fall through

; Print CS:SI on the console (screen + COM1) and the debug port, then halt for good.
fatal:
        push si
        call con_puts
        pop si
        call dbg_puts
        mov si, msg_halted
        call con_puts
        mov si, msg_halted
        call dbg_puts
halt_forever:
        cli
        hlt
        jmp halt_forever

; =============================================================================================
; Default handlers
; =============================================================================================
default_iret:
        iret

irq_master_default:
        push ax
        mov al, 0x20                    ; non-specific EOI
        out PIC1_CMD, al
        pop ax
        iret

irq_slave_default:
        push ax
        mov al, 0x20
        out PIC2_CMD, al
        out PIC1_CMD, al
        pop ax
        iret

; Return from a SVC_ENTER frame with the current CF copied into the caller's FLAGS.
svc_return:
        jc .set
        and byte [F_FLAGS], 0xFE
        jmp .out
.set:
        or byte [F_FLAGS], 0x01
.out:
        popa
        pop es
        pop ds
        iret

; The same for ZF (INT 16h AH=01h).
svc_return_zf:
        jz .set
        and byte [F_FLAGS], 0xBF
        jmp .out
.set:
        or byte [F_FLAGS], 0x40
.out:
        popa
        pop es
        pop ds
        iret

; =============================================================================================
; INT 08h — timer tick (IRQ 0): count ticks since midnight, run the user hook INT 1Ch.
; =============================================================================================
int08_handler:
        push ax
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        add word [BDA_TICKS], 1
        adc word [BDA_TICKS+2], 0
        cmp word [BDA_TICKS+2], TICKS_PER_DAY_HI
        jne .no_rollover
        cmp word [BDA_TICKS], TICKS_PER_DAY_LO
        jne .no_rollover
        mov word [BDA_TICKS], 0
        mov word [BDA_TICKS+2], 0
        mov byte [BDA_MIDNIGHT], 1
.no_rollover:
        cmp byte [BDA_MOTOR_COUNT], 0
        je .no_motor
        dec byte [BDA_MOTOR_COUNT]
.no_motor:
        int 0x1C
        mov al, 0x20
        out PIC1_CMD, al
        pop ds
        pop ax
        iret

; =============================================================================================
; INT 09h — keyboard (IRQ 1): read the set-1 scancode, track shift state, queue (scan, ASCII).
; =============================================================================================
int09_handler:
        push ax
        push bx
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        in al, KBC_DATA
        ; let INT 15h AH=4Fh see (and possibly swallow) the key: CF clear on return = swallowed
        mov ah, 0x4F
        stc
        int 0x15
        jnc .done
        cmp al, 0xE0
        jne .not_prefix
        or byte [BDA_KBD_MODE], 0x02
        jmp .eoi
.not_prefix:
        mov ah, al
        and ah, 0x7F                    ; AH = key number, AL bit 7 = break
        ; E0 2A / E0 36 (and their breaks) are "fake shifts" the keyboard wraps around grey
        ; keys: not real Shift presses
        test byte [BDA_KBD_MODE], 0x02
        jz .modifiers
        cmp ah, 0x2A
        je .done
        cmp ah, 0x36
        je .done
.modifiers:
        ; ---- modifier keys ----
        mov bl, 0x02                    ; left shift
        cmp ah, 0x2A
        je .shift_key
        mov bl, 0x01                    ; right shift
        cmp ah, 0x36
        je .shift_key
        mov bl, 0x04                    ; ctrl
        cmp ah, 0x1D
        je .shift_key
        mov bl, 0x08                    ; alt
        cmp ah, 0x38
        je .shift_key
        mov bl, 0x40                    ; caps lock
        cmp ah, 0x3A
        je .toggle_key
        mov bl, 0x20                    ; num lock
        cmp ah, 0x45
        je .toggle_key
        mov bl, 0x10                    ; scroll lock
        cmp ah, 0x46
        je .toggle_key
        test al, 0x80
        jnz .done                       ; other break codes: nothing to do
        ; ---- an ordinary key press: AH = scancode, find the ASCII code ----
        test byte [BDA_KBD_MODE], 0x02
        jnz .extended
        cmp ah, scancode_count
        jae .no_ascii
        mov bl, ah
        xor bh, bh
        test byte [BDA_KBD_FLAGS1], 0x08
        jnz .no_ascii                   ; Alt+key: ASCII 0
        test byte [BDA_KBD_FLAGS1], 0x04
        jnz .ctrl
        mov al, [cs:scancode_normal + bx]
        test byte [BDA_KBD_FLAGS1], 0x03
        jz .caps
        mov al, [cs:scancode_shift + bx]
.caps:
        test byte [BDA_KBD_FLAGS1], 0x40
        jz .store
        ; caps lock swaps the case of letters only
        mov bl, al
        or bl, 0x20
        cmp bl, 'a'
        jb .store
        cmp bl, 'z'
        ja .store
        xor al, 0x20
        jmp .store
.ctrl:
        mov al, [cs:scancode_normal + bx]
        cmp al, 'a'
        jb .no_ascii
        cmp al, 'z'
        ja .no_ascii
        and al, 0x1F                    ; Ctrl+letter: control code
        jmp .store
.extended:
        mov al, 0xE0                    ; grey keys: ASCII E0h (INT 16h AH=00h turns it into 0)
        jmp .store
.no_ascii:
        xor al, al
.store:
        ; put AX at the tail of the ring if it is not full
        mov bx, [BDA_KBD_TAIL]
        push bx
        add bx, 2
        cmp bx, [BDA_KBD_END]
        jb .no_wrap
        mov bx, [BDA_KBD_START]
.no_wrap:
        cmp bx, [BDA_KBD_HEAD]
        pop bx
        je .done                        ; buffer full: drop the key
        mov [bx], ax
        add bx, 2
        cmp bx, [BDA_KBD_END]
        jb .tail_ok
        mov bx, [BDA_KBD_START]
.tail_ok:
        mov [BDA_KBD_TAIL], bx
        jmp .done
.shift_key:
        test al, 0x80
        jnz .shift_up
        or [BDA_KBD_FLAGS1], bl
        jmp .done
.shift_up:
        not bl
        and [BDA_KBD_FLAGS1], bl
        jmp .done
.toggle_key:
        test al, 0x80
        jnz .done
        xor [BDA_KBD_FLAGS1], bl
.done:
        and byte [BDA_KBD_MODE], 0xFD   ; the E0 prefix applies to one key only
.eoi:
        mov al, 0x20
        out PIC1_CMD, al
        pop ds
        pop bx
        pop ax
        iret

; =============================================================================================
; INT 10h — video services for 80x25 colour text. Teletype and write-string output is also
; copied to COM1 so the serial console shows what the screen shows.
; =============================================================================================
int10_handler:
        sti
        SVC_ENTER
        mov ax, BDA_SEG
        mov ds, ax
        mov ax, 0xB800
        mov es, ax
        mov ah, [F_AH]
        cmp ah, 0x00
        je v_set_mode
        cmp ah, 0x01
        je v_cursor_shape
        cmp ah, 0x02
        je v_set_cursor
        cmp ah, 0x03
        je v_get_cursor
        cmp ah, 0x05
        je v_set_page
        cmp ah, 0x06
        je v_scroll_up
        cmp ah, 0x07
        je v_scroll_down
        cmp ah, 0x08
        je v_read_char
        cmp ah, 0x09
        je v_write_char_attr
        cmp ah, 0x0A
        je v_write_char
        cmp ah, 0x0E
        je v_teletype
        cmp ah, 0x0F
        je v_get_mode
        cmp ah, 0x12
        je v_alt_select
        cmp ah, 0x13
        je v_write_string
        cmp ah, 0x1A
        je v_display_combination
v_done:
        popa
        pop es
        pop ds
        iret

; AH=00h: set mode. Every text mode request becomes mode 03h (80x25, 16 colours).
v_set_mode:
        mov al, [F_AL]
        and al, 0x7F
        mov byte [BDA_VIDEO_MODE], 0x03
        mov word [BDA_VIDEO_COLS], 80
        mov word [BDA_PAGE_SIZE], 0x1000
        mov word [BDA_PAGE_START], 0
        mov byte [BDA_ACTIVE_PAGE], 0
        mov byte [BDA_ROWS], 24
        mov word [BDA_CHAR_HEIGHT], 16
        mov word [BDA_CURSOR_TYPE], 0x0607
        xor di, di
        mov cx, 8
        xor ax, ax
.clear_cursors:
        mov [BDA_CURSOR_POS + di], ax
        add di, 2
        loop .clear_cursors
        mov ah, 0x0C                    ; CRTC start address = 0
        xor al, al
        call crtc_write
        mov ah, 0x0D
        call crtc_write
        mov ah, 0x0A                    ; cursor shape: scan lines 6-7
        mov al, 0x06
        call crtc_write
        mov ah, 0x0B
        mov al, 0x07
        call crtc_write
        test byte [F_AL], 0x80          ; bit 7: keep the screen contents
        jnz .keep
        xor di, di
        mov ax, 0x0720                  ; grey space
        mov cx, 80 * 25
        rep stosw
.keep:
        xor bh, bh
        call update_hw_cursor
        jmp v_done

; AH=01h: cursor shape CH = start line, CL = end line.
v_cursor_shape:
        mov cx, [F_CX]
        mov [BDA_CURSOR_TYPE], cx
        mov ah, 0x0A
        mov al, ch
        call crtc_write
        mov ah, 0x0B
        mov al, cl
        call crtc_write
        jmp v_done

; AH=02h: set cursor of page BH to row DH, column DL.
v_set_cursor:
        mov bh, [F_BH]
        and bh, 7
        mov dx, [F_DX]
        call set_cursor
        jmp v_done

; AH=03h: get cursor of page BH → DH row, DL column, CX shape.
v_get_cursor:
        mov bh, [F_BH]
        and bh, 7
        call get_cursor
        mov [F_DX], dx
        mov ax, [BDA_CURSOR_TYPE]
        mov [F_CX], ax
        jmp v_done

; AH=05h: select the displayed page AL (0-7).
v_set_page:
        mov al, [F_AL]
        and al, 7
        mov [BDA_ACTIVE_PAGE], al
        xor ah, ah
        mov bx, ax
        shl ax, 12
        mov [BDA_PAGE_START], ax
        shr ax, 1                       ; start address is in character cells
        push ax
        mov al, ah
        mov ah, 0x0C
        call crtc_write
        pop ax
        mov ah, 0x0D
        call crtc_write
        mov bh, bl
        call update_hw_cursor
        jmp v_done

; AH=06h/07h: scroll the window CH,CL - DH,DL of the active page by AL lines (0 = clear),
; filling with attribute BH.
v_scroll_up:
        mov si, 0
        jmp v_scroll
v_scroll_down:
        mov si, 1
v_scroll:
        mov al, [F_AL]
        mov bh, [F_BH]
        mov cx, [F_CX]
        mov dx, [F_DX]
        call scroll_window
        jmp v_done

; AH=08h: read character AL and attribute AH at the cursor of page BH.
v_read_char:
        mov bh, [F_BH]
        and bh, 7
        call get_cursor
        call cell_offset
        mov ax, [es:di]
        mov [F_AX], ax
        jmp v_done

; AH=09h: write character AL with attribute BL, CX times, at the cursor (cursor stays).
v_write_char_attr:
        mov bh, [F_BH]
        and bh, 7
        call get_cursor
        call cell_offset
        mov al, [F_AL]
        mov ah, [F_BL]
        mov cx, [F_CX]
        rep stosw
        jmp v_done

; AH=0Ah: write character AL CX times at the cursor, keeping the attributes.
v_write_char:
        mov bh, [F_BH]
        and bh, 7
        call get_cursor
        call cell_offset
        mov al, [F_AL]
        mov cx, [F_CX]
        jcxz .out
.next:
        mov [es:di], al
        add di, 2
        loop .next
.out:
        jmp v_done

; AH=0Eh: teletype output of AL on the active page (CR, LF, BS, BEL handled; scrolls).
v_teletype:
        mov al, [F_AL]
        call serial_putc
        mov ah, 0xFF                    ; keep the attribute already on screen
        call tty_putc
        jmp v_done

; AH=0Fh: current mode AL, columns AH, active page BH.
v_get_mode:
        mov al, [BDA_VIDEO_MODE]
        mov ah, [BDA_VIDEO_COLS]
        mov [F_AX], ax
        mov al, [BDA_ACTIVE_PAGE]
        mov [F_BH], al
        jmp v_done

; AH=12h BL=10h: EGA/VGA information (colour, 256 KiB).
v_alt_select:
        cmp byte [F_BL], 0x10
        jne v_done
        mov word [F_BX], 0x0003
        mov word [F_CX], 0x0009
        jmp v_done

; AH=1Ah AL=00h: display combination: VGA with colour display.
v_display_combination:
        cmp byte [F_AL], 0
        jne v_done
        mov byte [F_AL], 0x1A
        mov word [F_BX], 0x0008
        jmp v_done

; AH=13h: write string ES:BP, CX characters, at row DH column DL of page BH.
; AL bit 0: move the cursor to the end; bit 1: the string alternates character, attribute.
v_write_string:
        mov bh, [F_BH]
        and bh, 7
        call get_cursor
        push dx                         ; the cursor to restore when AL bit 0 is clear
        mov dx, [F_DX]
        call set_cursor
        mov cx, [F_CX]
        mov si, [F_BP_SAVED]
        push ds
        mov ds, [F_ES]
        jcxz .end
.next:
        lodsb
        mov ah, [ss:F_BL]
        test byte [ss:F_AL], 0x02
        jz .have_attr
        mov ah, [si]
        inc si
.have_attr:
        push ds
        push ax
        mov ax, BDA_SEG
        mov ds, ax
        pop ax
        call serial_putc
        call tty_putc_page
        pop ds
        loop .next
.end:
        pop ds
        pop dx
        test byte [F_AL], 0x01
        jnz .keep_cursor
        mov bh, [F_BH]
        and bh, 7
        call set_cursor
.keep_cursor:
        jmp v_done

; ---- video helpers (DS = BDA, ES = B800h) -------------------------------------------------

; get_cursor: BH = page → DX = cursor (DH row, DL column). Clobbers BX high bits only.
get_cursor:
        push bx
        mov bl, bh
        xor bh, bh
        shl bx, 1
        mov dx, [BDA_CURSOR_POS + bx]
        pop bx
        ret

; set_cursor: BH = page, DX = position; updates the BDA and, for the active page, the CRTC.
set_cursor:
        push bx
        mov bl, bh
        xor bh, bh
        shl bx, 1
        mov [BDA_CURSOR_POS + bx], dx
        pop bx
        ; fall through
update_hw_cursor:
        cmp bh, [BDA_ACTIVE_PAGE]
        jne .out
        push ax
        push dx
        push bx
        call get_cursor
        mov al, 80
        mul dh
        xor dh, dh
        add ax, dx                      ; AX = row*80 + column
        mov bl, bh
        xor bh, bh
        shl bx, 11                      ; page * 2048 cells
        add ax, bx
        push ax
        mov al, ah
        mov ah, 0x0E
        call crtc_write
        pop ax
        mov ah, 0x0F
        call crtc_write
        pop bx
        pop dx
        pop ax
.out:
        ret

; crtc_write: register AH := AL, with one 16-bit OUT (index in the low byte, data in the high
; byte): a VGA accepts the pair in one bus cycle, and in xenlab it costs one exit instead of two.
crtc_write:
        push dx
        push ax
        xchg al, ah
        mov dx, CRTC_INDEX
        out dx, ax
        pop ax
        pop dx
        ret

; cell_offset: BH = page, DH = row, DL = column → DI = byte offset in text memory.
cell_offset:
        push ax
        push dx
        mov al, 80
        mul dh
        xor dh, dh
        add ax, dx
        shl ax, 1
        mov di, ax
        mov al, bh
        xor ah, ah
        shl ax, 12
        add di, ax
        pop dx
        pop ax
        ret

; tty_putc: AL = character, AH = attribute (FFh = keep) on the active page.
tty_putc:
        push bx
        mov bh, [BDA_ACTIVE_PAGE]
        call tty_putc_page
        pop bx
        ret

; tty_putc_page: AL = character, AH = attribute (FFh = keep), BH = page. DS = BDA.
tty_putc_page:
        push ax
        push cx
        push dx
        push di
        push es
        push si
        mov cx, 0xB800
        mov es, cx
        call get_cursor
        cmp al, 0x0D
        je .cr
        cmp al, 0x0A
        je .lf
        cmp al, 0x08
        je .bs
        cmp al, 0x07
        je .store
        call cell_offset
        cmp ah, 0xFF
        je .char_only
        mov [es:di], ax
        jmp .advance
.char_only:
        mov [es:di], al
.advance:
        inc dl
        cmp dl, 80
        jb .store
        xor dl, dl
.lf:
        inc dh
        cmp dh, 25
        jb .store
        mov dh, 24
        push dx
        mov al, 1                       ; scroll the page up one line, blank with grey
        push bx
        mov bl, bh
        mov bh, 0x07
        mov cx, 0x0000
        mov dx, 0x184F
        mov si, 0
        call scroll_window_page
        pop bx
        pop dx
        jmp .store
.cr:
        xor dl, dl
        jmp .store
.bs:
        test dl, dl
        jz .store
        dec dl
.store:
        call set_cursor
        pop si
        pop es
        pop di
        pop dx
        pop cx
        pop ax
        ret

; scroll_window: on the active page. AL = lines (0 = clear), BH = fill attribute,
; CH,CL = top row, left column; DH,DL = bottom row, right column; SI = 0 up, 1 down.
scroll_window:
        push bx
        mov bl, [BDA_ACTIVE_PAGE]
        call scroll_window_page
        pop bx
        ret

; scroll_window_page: as scroll_window with BL = page.
scroll_window_page:
        push bp
        push ax
        push bx
        push cx
        push dx
        push di
        push si
        push ds
        push es
        cmp dh, 24
        jbe .rows_ok
        mov dh, 24
.rows_ok:
        cmp dl, 79
        jbe .cols_ok
        mov dl, 79
.cols_ok:
        cmp ch, dh
        ja .out
        cmp cl, dl
        ja .out
        ; registers: AL = lines, AH = current row, BL = page, BH = fill attribute,
        ; CX = top-left, DX = bottom-right, BP = window width in cells
        mov ah, dh
        sub ah, ch
        inc ah                          ; AH = rows in the window
        test al, al
        jz .clear_all
        cmp al, ah
        jbe .lines_ok
.clear_all:
        mov al, ah
.lines_ok:
        push ax
        mov ax, 0xB800
        mov ds, ax
        mov es, ax
        pop ax
        ; width in cells
        push dx
        sub dl, cl
        inc dl
        xor dh, dh
        mov bp, dx
        pop dx
        cmp si, 0
        jne .down
        ; --- up: row r takes row r+AL, the last AL rows are blanked ---
        mov ah, ch                      ; AH = r
.up_row:
        cmp ah, dh
        ja .out
        ; compute destination and source offsets
        push dx
        push ax
        mov dh, ah
        mov dl, cl
        xchg bl, bh
        call cell_offset                ; DI = destination (BH = page)
        xchg bl, bh
        pop ax
        pop dx
        push ax
        add ah, al                      ; source row
        cmp ah, dh
        ja .up_blank
        push dx
        mov dh, ah
        mov dl, cl
        push di
        xchg bl, bh
        call cell_offset
        xchg bl, bh
        mov si, di
        pop di
        pop dx
        push cx
        mov cx, bp
        rep movsw
        pop cx
        jmp .up_next
.up_blank:
        push cx
        mov cx, bp
        mov al, ' '
        mov ah, bh
        rep stosw
        pop cx
.up_next:
        pop ax
        inc ah
        jmp .up_row
.down:
        ; --- down: row r takes row r-AL, the first AL rows are blanked ---
        mov ah, dh                      ; AH = r, from the bottom
.down_row:
        cmp ah, ch
        jb .out
        cmp ah, 0xFF
        je .out
        push dx
        push ax
        mov dh, ah
        mov dl, cl
        xchg bl, bh
        call cell_offset
        xchg bl, bh
        pop ax
        pop dx
        push ax
        sub ah, al                      ; source row
        jc .down_blank
        cmp ah, ch
        jb .down_blank
        push dx
        mov dh, ah
        mov dl, cl
        push di
        xchg bl, bh
        call cell_offset
        xchg bl, bh
        mov si, di
        pop di
        pop dx
        push cx
        mov cx, bp
        rep movsw
        pop cx
        jmp .down_next
.down_blank:
        push cx
        mov cx, bp
        mov al, ' '
        mov ah, bh
        rep stosw
        pop cx
.down_next:
        pop ax
        dec ah
        jmp .down_row
.out:
        pop es
        pop ds
        pop si
        pop di
        pop dx
        pop cx
        pop bx
        pop ax
        pop bp
        ret

; =============================================================================================
; INT 11h — equipment list; INT 12h — conventional memory size.
; =============================================================================================
int11_handler:
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        mov ax, [BDA_EQUIPMENT]
        pop ds
        iret

int12_handler:
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        mov ax, [BDA_MEMORY_KB]
        pop ds
        iret

; =============================================================================================
; INT 13h — fixed disk services for drive 80h, on the ATA controller (PIO or bus-master DMA).
; =============================================================================================
int13_handler:
        sti
        SVC_ENTER
        mov ax, BDA_SEG
        mov ds, ax
        mov ah, [F_AH]
        cmp ah, 0x15
        je d_get_type
        cmp byte [F_DL], 0x80
        jne d_bad_drive
        cmp byte [BDA_NUM_DISKS], 0
        je d_bad_drive
        mov ds, [BDA_EBDA_SEG]
        cmp ah, 0x00
        je d_reset
        cmp ah, 0x01
        je d_status
        cmp ah, 0x02
        je d_read_chs
        cmp ah, 0x03
        je d_write_chs
        cmp ah, 0x04
        je d_ok
        cmp ah, 0x08
        je d_params
        cmp ah, 0x0C
        je d_ok
        cmp ah, 0x0D
        je d_reset
        cmp ah, 0x10
        je d_ok
        cmp ah, 0x11
        je d_ok
        cmp ah, 0x41
        je d_ext_check
        cmp ah, 0x42
        je d_ext_read
        cmp ah, 0x43
        je d_ext_write
        cmp ah, 0x44
        je d_ok
        cmp ah, 0x48
        je d_ext_params
d_bad:
        mov byte [F_AH], 0x01           ; invalid function or parameter
        jmp d_finish
d_bad_drive:
        mov byte [F_AH], 0x01
        jmp d_finish
d_ok:
        mov byte [F_AH], 0x00
; Record the status in the BDA and return it with CF = (AH != 0).
d_finish:
        mov ax, BDA_SEG
        mov ds, ax
        mov al, [F_AH]
        mov [BDA_DISK_STATUS], al
        test al, al
        jz .ok
        stc
        jmp svc_return
.ok:
        clc
        jmp svc_return

; AH=00h/0Dh: reset — pulse the ATA software reset and wait for the drive.
d_reset:
        mov dx, ATA_CONTROL
        mov al, 0x04                    ; SRST
        out dx, al
        xor al, al                      ; release; nIEN clear (IRQ 14 stays masked at the PIC)
        out dx, al
        call ata_wait_not_busy
        jc .timeout
        mov byte [F_AH], 0
        jmp d_finish
.timeout:
        mov byte [F_AH], 0x80
        jmp d_finish

; AH=01h: status of the last operation in AH.
d_status:
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        mov al, [BDA_DISK_STATUS]
        pop ds
        mov [F_AH], al
        jmp d_finish

; AH=02h/03h: read/write AL sectors at CH,CL,DH (CHS) to/from ES:BX.
d_read_chs:
        mov byte [E_DIR], 0
        jmp d_chs
d_write_chs:
        mov byte [E_DIR], 1
d_chs:
        mov al, [F_AL]
        test al, al
        jz d_bad
        cmp al, 127
        ja d_bad
        xor ah, ah
        mov [E_COUNT], ax
        ; sector number: CL bits 0-5, 1-based
        mov al, [F_CL]
        and ax, 0x3F
        jz d_bad
        cmp ax, [E_SPT]
        ja d_bad
        dec ax
        mov si, ax                      ; SI = sector - 1
        ; head
        mov bl, [F_DH]
        xor bh, bh
        cmp bx, [E_HEADS]
        jae d_bad
        ; cylinder: CL bits 6-7 are cylinder bits 8-9, CH the low byte
        mov al, [F_CL]
        and al, 0xC0
        xor ah, ah
        shl ax, 2
        mov al, [F_CH]
        cmp ax, [E_CYLS]
        jae d_bad
        ; LBA = (cylinder * heads + head) * sectors_per_track + sector - 1
        mul word [E_HEADS]
        add ax, bx
        adc dx, 0
        mov cx, ax
        mov ax, dx
        mul word [E_SPT]
        mov bx, ax                      ; high word * spt
        mov ax, cx
        mul word [E_SPT]
        add dx, bx
        add ax, si
        adc dx, 0
        mov [E_LBA], ax
        mov [E_LBA+2], dx
        ; buffer ES:BX, normalised so that the offset is below 16
        mov di, [F_BX]
        mov ax, di
        shr ax, 4
        add ax, [F_ES]
        mov es, ax
        and di, 0x0F
        call disk_rw
        mov [F_AL], cl
        mov [F_AH], ah
        jmp d_finish

; AH=08h: drive parameters (BIOS geometry).
d_params:
        mov ax, [E_CYLS]
        dec ax                          ; highest cylinder number
        mov [F_CH], al
        mov cl, ah
        shl cl, 6
        or cl, [E_SPT]
        mov [F_CL], cl
        mov al, [E_HEADS]
        dec al
        mov [F_DH], al
        mov byte [F_DL], 1              ; one hard disk
        mov byte [F_AL], 0
        mov byte [F_BL], 0
        mov byte [F_AH], 0
        jmp d_finish

; AH=15h: disk type. AH=03h (fixed disk) with CX:DX = sectors; AH=00h if there is no drive.
; The status goes in AH and is not recorded in the BDA.
d_get_type:
        cmp byte [F_DL], 0x80
        jne .none
        cmp byte [BDA_NUM_DISKS], 0
        je .none
        mov ds, [BDA_EBDA_SEG]
        mov ax, [E_TOTAL+2]
        mov [F_CX], ax
        mov ax, [E_TOTAL]
        mov [F_DX], ax
        mov byte [F_AH], 0x03
        clc
        jmp svc_return
.none:
        mov byte [F_AH], 0x00
        clc
        jmp svc_return

; AH=41h: EDD installation check. BX=55AAh → BX=AA55h, AH=21h (EDD 1.1), CX bit 0: 42h-44h,47h,48h.
d_ext_check:
        cmp word [F_BX], 0x55AA
        jne d_bad
        mov word [F_BX], 0xAA55
        mov word [F_CX], 0x0001
        mov byte [F_AH], 0x21
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        mov byte [BDA_DISK_STATUS], 0
        pop ds
        clc
        jmp svc_return

; AH=42h/43h: extended read/write with the disk address packet at DS:SI:
;   +0 size (10h), +2 sector count, +4 buffer offset, +6 buffer segment, +8 LBA (qword).
d_ext_read:
        mov byte [E_DIR], 0
        jmp d_ext
d_ext_write:
        mov byte [E_DIR], 1
d_ext:
        mov es, [F_DS]
        mov si, [F_SI]
        cmp byte [es:si], 0x10
        jb d_bad
        mov ax, [es:si+2]
        test ax, ax
        jz d_ok
        cmp ax, 127
        ja d_bad
        mov [E_COUNT], ax
        cmp word [es:si+12], 0          ; LBA above 2^32: not reachable with LBA28
        jne d_bad
        cmp word [es:si+14], 0
        jne d_bad
        mov ax, [es:si+8]
        mov dx, [es:si+10]
        test dh, 0xF0                   ; LBA28 limit
        jnz d_bad
        mov [E_LBA], ax
        mov [E_LBA+2], dx
        mov di, [es:si+4]
        mov ax, [es:si+6]
        mov bx, di
        shr bx, 4
        add ax, bx
        and di, 0x0F
        push es
        push si
        mov es, ax
        call disk_rw
        pop si
        pop es
        mov [es:si+2], cx               ; sectors actually transferred
        mov [F_AH], ah
        jmp d_finish

; AH=48h: extended drive parameters into the buffer at DS:SI (at least 1Ah bytes).
d_ext_params:
        mov es, [F_DS]
        mov di, [F_SI]
        cmp word [es:di], 0x1A
        jb d_bad
        mov word [es:di], 0x1A
        mov word [es:di+2], 0x0002      ; CHS information is valid
        mov ax, [E_CYLS]
        mov [es:di+4], ax
        mov word [es:di+6], 0
        mov ax, [E_HEADS]
        mov [es:di+8], ax
        mov word [es:di+10], 0
        mov ax, [E_SPT]
        mov [es:di+12], ax
        mov word [es:di+14], 0
        mov ax, [E_TOTAL]
        mov [es:di+16], ax
        mov ax, [E_TOTAL+2]
        mov [es:di+18], ax
        mov word [es:di+20], 0
        mov word [es:di+22], 0
        mov word [es:di+24], 512
        jmp d_ok

; ---- disk transfer core ---------------------------------------------------------------------
; disk_rw: move E_COUNT sectors at E_LBA between the disk and ES:DI (E_DIR: 0 read, 1 write).
; In: DS = EBDA. Out: AH = INT 13h status (0 = success), CX = sectors transferred.
; A bus master moves 16-bit words: a PRD region must start at an even address (PIIX4 ignores
; bit 0), so a buffer at an odd address goes through PIO instead.
disk_rw:
        test byte [E_FLAGS], 0x01
        jz ata_pio_rw
        test di, 1                      ; ES:DI is normalised: DI odd = odd physical address
        jz ata_dma_rw
        ; fall through to PIO

; PIO: one command for the whole transfer. Per DRQ block, wait for DRQ, then move the block
; with one `rep insw` / `rep outsw` (one exit each in xenlab). A block is one sector with
; READ/WRITE SECTORS, or up to 16 sectors with READ/WRITE MULTIPLE (CMOS 70h bit 1).
ata_pio_rw:
        mov bx, 1                       ; BX = sectors per DRQ block
        mov al, ATA_CMD_READ
        mov ah, ATA_CMD_WRITE
        test byte [E_FLAGS], 0x02
        jz .which
        mov bx, 16
        mov al, ATA_CMD_READ_MULTIPLE
        mov ah, ATA_CMD_WRITE_MULTIPLE
.which:
        cmp byte [E_DIR], 0
        je .issue
        mov al, ah
.issue:
        call ata_issue
        jc .fail_none
        mov cx, [E_COUNT]
        cmp byte [E_DIR], 0
        jne .write
.read_block:
        call ata_wait_drq
        jc .fail
        call .block_words               ; AX = sectors in this block, CX pushed
        rep insw
        pop cx
        sub cx, ax
        jnz .read_block
        jmp .success
.write:
        push ds
        push es
        pop ds                          ; DS:SI = the caller's buffer for outsw
        mov si, di
.write_block:
        call ata_wait_drq
        jc .write_fail
        call .block_words
        rep outsw
        pop cx
        sub cx, ax
        jnz .write_block
        inc cx                          ; the last block counts once the drive says so
        call ata_wait_done
        jc .write_fail
        dec cx
        pop ds
.success:
        mov cx, [E_COUNT]
        xor ah, ah
        ret
.write_fail:
        pop ds
.fail:
        ; CX sectors were not transferred
        neg cx
        add cx, [E_COUNT]
        ret
.fail_none:
        xor cx, cx
        ret
; In: CX = sectors left, BX = block size. Out: AX = sectors in this block, the old CX pushed
; (under the return address), CX = words to move, DX = data port.
.block_words:
        pop dx                          ; return address
        push cx
        push dx
        mov ax, cx
        cmp ax, bx
        jbe .small
        mov ax, bx
.small:
        mov cx, ax
        shl cx, 8                       ; 256 words per sector
        mov dx, ATA_DATA
        ret

; DMA: describe the buffer in a PRD table (split at 64 KiB boundaries), start the ATA command
; and the bus master, wait for the bus master's interrupt bit. The data moves in one exit.
ata_dma_rw:
        ; physical address of ES:DI → DX:AX
        mov ax, es
        mov dx, ax
        shl ax, 4
        shr dx, 12
        add ax, di
        adc dx, 0
        mov cx, [E_COUNT]
        shl cx, 9                       ; bytes (at most 127 * 512)
        mov si, E_PRD
.entry:
        mov [si], ax
        mov [si+2], dx
        mov word [si+6], 0
        mov bx, ax
        neg bx                          ; bytes left before the next 64 KiB boundary (0 = 64 KiB)
        jz .last
        cmp bx, cx
        jae .last
        mov [si+4], bx
        sub cx, bx
        add ax, bx
        adc dx, 0
        add si, 8
        jmp .entry
.last:
        mov [si+4], cx
        mov byte [si+7], 0x80           ; end of table
        ; stop the engine, clear its interrupt and error bits
        mov dx, BM_COMMAND
        xor al, al
        out dx, al
        mov dx, BM_STATUS
        mov al, 0x26                    ; W1C interrupt + error, keep "drive 0 DMA capable"
        out dx, al
        ; PRD table physical address = EBDA segment * 16 + E_PRD
        mov ax, ds
        mov bx, ax
        shl ax, 4
        shr bx, 12
        add ax, E_PRD
        adc bx, 0
        mov dx, BM_PRDT
        out dx, ax
        mov ax, bx
        add dx, 2
        out dx, ax
        ; the ATA command, then start the bus master (bit 3 = write to memory, i.e. a disk read)
        mov al, ATA_CMD_READ_DMA
        mov bl, 0x09
        cmp byte [E_DIR], 0
        je .issue
        mov al, ATA_CMD_WRITE_DMA
        mov bl, 0x01
.issue:
        call ata_issue
        jc .fail
        mov al, bl
        mov dx, BM_COMMAND
        out dx, al
        mov dx, BM_STATUS
        mov cx, 0xFFFF
.poll:
        in al, dx
        test al, 0x04                   ; the drive interrupted: transfer finished
        jnz .finished
        test al, 0x01                   ; engine stopped without an interrupt: PRD too small
        jz .finished
        loop .poll
.finished:
        mov bl, al
        mov dx, BM_COMMAND
        xor al, al
        out dx, al                      ; stop the engine
        mov dx, ATA_STATUS
        in al, dx                       ; read status: acknowledges the drive's interrupt
        test al, ATA_SR_ERR
        jz .no_ata_error
        call ata_error_code
        xor cx, cx
        ret
.no_ata_error:
        mov ah, 0x20                    ; bus-master error: controller failure
        test bl, 0x02
        jnz .fail_ah
        mov ah, 0x80                    ; no interrupt: time-out
        test bl, 0x04
        jz .fail_ah
        mov cx, [E_COUNT]
        xor ah, ah
        ret
.fail:
        mov ah, 0x80
.fail_ah:
        xor cx, cx
        ret

; ata_issue: select drive 0 in LBA mode, load count and LBA from the EBDA, write command AL.
; In: DS = EBDA. Out: CF = 1 and AH = 80h if the drive stays busy.
ata_issue:
        push ax
        mov dx, ATA_DEVICE
        mov al, [E_LBA+3]
        and al, 0x0F
        or al, 0xE0                     ; LBA, device 0
        out dx, al
        call ata_wait_not_busy
        jc .timeout
        mov dx, ATA_COUNT
        mov al, [E_COUNT]
        out dx, al
        inc dx
        mov al, [E_LBA]
        out dx, al
        inc dx
        mov al, [E_LBA+1]
        out dx, al
        inc dx
        mov al, [E_LBA+2]
        out dx, al
        mov dx, ATA_STATUS
        pop ax
        out dx, al
        clc
        ret
.timeout:
        pop ax
        mov ah, 0x80
        stc
        ret

; ata_wait_not_busy: poll status until BSY clears. Out: AL = status; CF = 1, AH = 80h on time-out.
ata_wait_not_busy:
        push cx
        push dx
        mov dx, ATA_STATUS
        mov cx, 0xFFFF
.poll:
        in al, dx
        test al, ATA_SR_BSY
        jz .ready
        loop .poll
        pop dx
        pop cx
        mov ah, 0x80
        stc
        ret
.ready:
        pop dx
        pop cx
        clc
        ret

; ata_wait_drq: wait for the drive to be ready to move a sector. CF = 1 with AH = status on error.
ata_wait_drq:
        call ata_wait_not_busy
        jc .out
        test al, ATA_SR_ERR
        jnz ata_error_code
        test al, ATA_SR_DRQ
        jnz .ok
        mov ah, 0x20                    ; neither data nor an error: controller failure
        stc
        ret
.ok:
        clc
.out:
        ret

; ata_wait_done: after the last sector of a write: wait for BSY to clear, check ERR.
ata_wait_done:
        call ata_wait_not_busy
        jc .out
        test al, ATA_SR_ERR
        jnz ata_error_code
        clc
.out:
        ret

; ata_error_code: read the ATA error register and turn it into an INT 13h status in AH; CF = 1.
ata_error_code:
        push dx
        mov dx, ATA_ERROR
        in al, dx
        pop dx
        mov ah, 0x04                    ; IDNF: sector not found
        test al, 0x10
        jnz .out
        mov ah, 0x01                    ; ABRT: bad command
        test al, 0x04
        jnz .out
        mov ah, 0x10                    ; UNC: uncorrectable data error
        test al, 0x40
        jnz .out
        mov ah, 0x20                    ; anything else: controller failure
.out:
        stc
        ret

; disk_init (POST): find drive 0 with IDENTIFY DEVICE, derive the BIOS geometry, choose PIO or DMA.
disk_init:
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        mov byte [BDA_NUM_DISKS], 0
        mov es, [BDA_EBDA_SEG]
        mov dx, ATA_CONTROL
        xor al, al                      ; nIEN clear: the drive may interrupt (IRQ 14 is masked)
        out dx, al
        mov dx, ATA_DEVICE
        mov al, 0xA0                    ; device 0
        out dx, al
        mov dx, ATA_STATUS
        in al, dx
        cmp al, 0xFF                    ; floating bus: no controller
        je .none
        test al, al                     ; 0: no device
        jz .none
        call ata_wait_not_busy
        jc .none
        mov al, ATA_CMD_IDENTIFY
        out dx, al
        call ata_wait_drq
        jc .none
        mov di, E_IDENT
        mov cx, 256
        mov dx, ATA_DATA
        rep insw
        mov byte [BDA_NUM_DISKS], 1
        push es
        pop ds                          ; DS = EBDA from here
        mov ax, [E_IDENT + 60*2]
        mov dx, [E_IDENT + 61*2]
        mov [E_TOTAL], ax
        mov [E_TOTAL+2], dx
        ; BIOS geometry ("LBA-assisted" translation): 63 sectors per track; 16, 32, 64, 128 or
        ; 255 heads, the fewest that keep the cylinder count at or below 1024.
        mov word [E_SPT], 63
        mov bx, 16
        cmp dx, 0x000F                  ; 1024*16*63 = 0F_C000h sectors
        jb .heads
        mov bx, 32
        cmp dx, 0x001F                  ; 1F_8000h
        jb .heads
        mov bx, 64
        cmp dx, 0x003F                  ; 3F_0000h
        jb .heads
        mov bx, 128
        cmp dx, 0x007E                  ; 7E_0000h
        jb .heads
        mov bx, 255
.heads:
        mov [E_HEADS], bx
        ; cylinders = total / (heads * 63), at most 1024, at least 1
        push dx
        push ax
        mov ax, bx
        mov cx, 63
        mul cx
        mov cx, ax                      ; CX = sectors per cylinder
        pop ax
        pop dx
        cmp dx, cx
        jae .max_cyls                   ; quotient would not fit in 16 bits
        div cx
        cmp ax, 1024
        jbe .cyls
.max_cyls:
        mov ax, 1024
.cyls:
        test ax, ax
        jnz .cyls_ok
        inc ax
.cyls_ok:
        mov [E_CYLS], ax
        ; fixed disk parameter table for INT 41h
        mov [E_FDPT + 0], ax            ; cylinders
        mov [E_FDPT + 12], ax           ; landing zone
        mov al, [E_HEADS]
        mov [E_FDPT + 2], al
        mov word [E_FDPT + 5], 0xFFFF   ; no write precompensation
        mov byte [E_FDPT + 8], 0x08     ; more than 8 heads
        mov al, [E_SPT]
        mov [E_FDPT + 14], al
        xor ax, ax
        mov es, ax
        mov word [es:0x41*4], E_FDPT
        mov [es:0x41*4+2], ds
        ; READ/WRITE MULTIPLE if qemu-dm asked for it (CMOS 70h bit 1) and the drive accepts
        ; SET MULTIPLE MODE with 16 sectors per block
        mov al, CMOS_XENLAB
        call cmos_read
        test al, 0x02
        jz .no_multiple
        mov dx, ATA_COUNT
        mov al, 16
        out dx, al
        mov dx, ATA_STATUS
        mov al, ATA_CMD_SET_MULTIPLE
        out dx, al
        call ata_wait_not_busy
        jc .no_multiple
        test al, ATA_SR_ERR
        jnz .no_multiple
        or byte [E_FLAGS], 0x02
.no_multiple:
        ; DMA if qemu-dm asked for it (CMOS 70h bit 0) and the bus master answers
        mov al, CMOS_XENLAB
        call cmos_read
        test al, 0x01
        jz .done
        mov dx, BM_STATUS
        in al, dx
        cmp al, 0xFF
        je .done
        or byte [E_FLAGS], 0x01
.done:
        pop ds
        ret
.none:
        mov si, msg_dbg_no_disk
        call dbg_puts
        pop ds
        ret

; =============================================================================================
; INT 14h — serial port services on COM1 (DX = 0).
; =============================================================================================
int14_handler:
        sti
        SVC_ENTER
        mov ax, BDA_SEG
        mov ds, ax
        cmp word [F_DX], 0
        jne .no_port
        mov dx, [BDA_COM1]
        test dx, dx
        jz .no_port
        mov ah, [F_AH]
        cmp ah, 0x00
        je .init
        cmp ah, 0x01
        je .send
        cmp ah, 0x02
        je .receive
        cmp ah, 0x03
        je .status
.no_port:
        mov byte [F_AH], 0x80           ; time-out: no such port
        jmp v_done
.init:
        ; AL: bits 7-5 baud (110 ... 9600), 4-3 parity, 2 stop bits, 1-0 word length.
        ; Bits 4-0 have the same meaning as the UART's line control register.
        mov bl, [F_AL]
        mov cl, 5
        shr bl, cl
        xor bh, bh
        shl bx, 1
        mov cx, [cs:baud_divisors + bx]
        push dx
        add dx, 3
        mov al, 0x80
        out dx, al                      ; DLAB
        pop dx
        mov al, cl
        out dx, al
        inc dx
        mov al, ch
        out dx, al
        add dx, 2
        mov al, [F_AL]
        and al, 0x1F
        out dx, al                      ; line control, DLAB off
        sub dx, 3
        jmp .status
.send:
        call serial_wait_thre
        jc .send_timeout
        mov al, [F_AL]
        out dx, al
        add dx, 5
        in al, dx
        mov [F_AH], al
        jmp v_done
.send_timeout:
        or al, 0x80
        mov [F_AH], al
        jmp v_done
.receive:
        mov cx, [BDA_COM_TIMEOUT]
        and cx, 0xFF
        shl cx, 12
        jnz .rx_poll
        inc cx
.rx_poll:
        add dx, 5
        in al, dx
        sub dx, 5
        test al, 0x01
        jnz .rx_ready
        loop .rx_poll
        or al, 0x80
        mov [F_AH], al
        jmp v_done
.rx_ready:
        and al, 0x1E
        mov [F_AH], al
        in al, dx
        mov [F_AL], al
        jmp v_done
.status:
        add dx, 5
        in al, dx
        mov [F_AH], al
        inc dx
        in al, dx
        mov [F_AL], al
        jmp v_done

baud_divisors:  dw 1047, 768, 384, 192, 96, 48, 24, 12

; serial_wait_thre: DX = port base; wait until the transmitter can take a byte.
; Out: CF = 1 (AL = line status) on time-out.
serial_wait_thre:
        push cx
        push dx
        add dx, 5
        mov cx, 0x1000
.poll:
        in al, dx
        test al, 0x20
        jnz .ok
        loop .poll
        pop dx
        pop cx
        stc
        ret
.ok:
        pop dx
        pop cx
        clc
        ret

; serial_putc: AL to COM1 (used by INT 10h so the serial console mirrors the screen).
serial_putc:
        push dx
        push ax
        mov dx, COM1
        call serial_wait_thre
        pop ax
        jc .out
        out dx, al
.out:
        pop dx
        ret

; =============================================================================================
; INT 15h — system services: keyboard intercept, wait, extended memory, E820/E801, APM, A20.
; =============================================================================================
int15_handler:
        cmp ah, 0x4F
        jne .full
        stc                             ; keyboard intercept: keep the key
        retf 2
.full:
        sti
        SVC_ENTER
        mov ax, BDA_SEG
        mov ds, ax
        mov ax, [F_AX]
        cmp ah, 0x53
        je apm
        cmp ah, 0x86
        je s_wait
        cmp ah, 0x88
        je s_ext_memory
        cmp ah, 0xC0
        je s_config
        cmp ah, 0x24
        je s_a20
        cmp ah, 0x90
        je s_ok_ah0
        cmp ah, 0x91
        je s_ok_ah0
        cmp ax, 0xE820
        je s_e820
        cmp ax, 0xE801
        je s_e801
s_unsupported:
        mov byte [F_AH], 0x86           ; function not supported
        stc
        jmp svc_return
s_ok_ah0:
        mov byte [F_AH], 0
        clc
        jmp svc_return

; AH=88h: extended memory above 1 MiB in KiB (CMOS 30h/31h).
s_ext_memory:
        call ext_memory_kb
        mov [F_AX], ax
        clc
        jmp svc_return

; AX=E801h: AX = CX = KiB between 1 and 16 MiB, BX = DX = 64 KiB blocks above 16 MiB.
s_e801:
        call ext_memory_kb
        cmp ax, 15 * 1024
        jbe .below
        mov ax, 15 * 1024
.below:
        mov [F_AX], ax
        mov [F_CX], ax
        mov al, 0x35
        call cmos_read
        mov ah, al
        mov al, 0x34
        call cmos_read
        mov [F_BX], ax
        mov [F_DX], ax
        clc
        jmp svc_return

; AX=E820h: system memory map, one 20-byte entry per call at ES:DI.
; The 80186 has no 32-bit registers, so this follows the 16-bit view of the call: DX must hold
; 4150h (the low half of 'SMAP'), BX is the continuation value (0 first), CX the buffer size.
; Returns AX = 4150h, CX = 20, BX = next continuation value (0 after the last entry).
s_e820:
        cmp word [F_DX], 0x4150
        jne s_unsupported
        cmp word [F_CX], 20
        jb s_unsupported
        mov bx, [F_BX]
        cmp bx, 4
        jae s_unsupported
        mov es, [F_ES]
        mov di, [F_DI]
        xor ax, ax
        mov cx, 10
        push di
        rep stosw                       ; zero the entry
        pop di
        cmp bx, 0
        je .conventional
        cmp bx, 1
        je .ebda
        cmp bx, 2
        je .bios
        ; 3: extended memory from 1 MiB
        call ext_memory_kb
        mov word [es:di+2], 0x0010      ; base 0010_0000h
        mov dx, ax
        shl ax, 10
        shr dx, 6
        mov [es:di+8], ax
        mov [es:di+10], dx
        mov byte [es:di+16], 1          ; usable RAM
        xor bx, bx                      ; last entry
        jmp .out
.conventional:
        ; 0 .. start of the EBDA: usable
        mov ax, [BDA_EBDA_SEG]
        mov dx, ax
        shl ax, 4
        shr dx, 12
        mov [es:di+8], ax
        mov [es:di+10], dx
        mov byte [es:di+16], 1
        mov bx, 1
        jmp .out
.ebda:
        mov ax, [BDA_EBDA_SEG]
        mov dx, ax
        shl ax, 4
        shr dx, 12
        mov [es:di], ax
        mov [es:di+2], dx
        mov word [es:di+8], EBDA_KB * 1024
        mov byte [es:di+16], 2          ; reserved
        mov bx, 2
        jmp .out
.bios:
        mov word [es:di+2], 0x000F      ; F0000h, 64 KiB: this BIOS
        mov word [es:di+10], 0x0001
        mov byte [es:di+16], 2
        mov bx, 3
        call ext_memory_kb
        test ax, ax
        jnz .out
        xor bx, bx                      ; no extended memory: this was the last entry
.out:
        mov [F_BX], bx
        mov word [F_AX], 0x4150
        mov word [F_CX], 20
        clc
        jmp svc_return

; AH=86h: wait CX:DX microseconds (in timer ticks of 54.9 ms, rounded up; interrupts must run).
s_wait:
        mov dx, [F_CX]
        mov ax, [F_DX]
        mov cx, 54925
        cmp dx, cx
        jae s_unsupported               ; longer than an hour: refuse
        div cx
        test dx, dx
        jz .whole
        inc ax
.whole:
        mov cx, ax
        jcxz .done
.tick:
        mov bx, [BDA_TICKS]
.same:
        sti
        hlt                             ; wait for an interrupt (the timer tick)
        cmp bx, [BDA_TICKS]
        je .same
        loop .tick
.done:
        mov byte [F_AH], 0
        clc
        jmp svc_return

; AH=C0h: ES:BX → system configuration table.
s_config:
        mov word [F_ES], cs
        mov word [F_BX], config_table
        mov byte [F_AH], 0
        clc
        jmp svc_return

; AH=24h: A20 gate through the keyboard controller's output port (2400h off, 2401h on,
; 2402h status in AL, 2403h support: BX bit 0 = keyboard controller).
s_a20:
        mov al, [F_AL]
        cmp al, 0x00
        je .off
        cmp al, 0x01
        je .on
        cmp al, 0x02
        je .status
        cmp al, 0x03
        jne s_unsupported
        mov word [F_BX], 0x0001
        jmp s_ok_ah0
.off:
        mov ah, 0xDD
        jmp .set
.on:
        mov ah, 0xDF
.set:
        mov al, 0xD1                    ; write output port
        call kbc_command
        mov al, ah
        call kbc_write_data
        jmp s_ok_ah0
.status:
        mov al, 0xD0                    ; read output port
        call kbc_command
        call kbc_read
        shr al, 1
        and al, 1
        mov [F_AL], al
        jmp s_ok_ah0

; AH=53h: APM 1.2, real-mode interface. AL=07h with BX=0001h (all devices) and CX=0003h
; (off) writes S5 to the ACPI PM1a control port: qemu-dm powers the guest off.
apm:
        mov al, [F_AL]
        cmp al, 0x00
        je .check
        cmp al, 0x01
        je .ok
        cmp al, 0x04
        je .ok
        cmp al, 0x05
        je .ok
        cmp al, 0x06
        je .ok
        cmp al, 0x07
        je .set_state
        cmp al, 0x08
        je .ok
        cmp al, 0x0A
        je .power_status
        cmp al, 0x0D
        je .ok
        cmp al, 0x0E
        je .version
        cmp al, 0x0F
        je .ok
        mov byte [F_AH], 0x09           ; unrecognised
        stc
        jmp svc_return
.check:
        mov word [F_AX], 0x0102         ; APM 1.2
        mov word [F_BX], 0x504D         ; "PM"
        mov word [F_CX], 0x0000
        clc
        jmp svc_return
.version:
        mov word [F_AX], 0x0102
        clc
        jmp svc_return
.power_status:
        mov word [F_BX], 0x01FF         ; on AC power, battery status unknown
        mov word [F_CX], 0x80FF         ; no battery
        mov word [F_DX], 0xFFFF
        clc
        jmp svc_return
.set_state:
        cmp word [F_CX], 0x0003
        jne .ok                         ; standby/suspend: nothing to do
        mov si, msg_dbg_poweroff
        call dbg_puts
        mov dx, PM1A_CNT
        mov ax, 0x2000                  ; SLP_EN, SLP_TYP = 0 (S5)
        out dx, ax
        ; The platform powers off a moment after the write (the device model asks the
        ; hypervisor to shut the domain down): halt and let it, for up to ~2 s of timer ticks.
        sti
        mov cx, 36
.wait_off:
        hlt
        loop .wait_off
        cli
        ; still running: the platform ignored us
        mov byte [F_AH], 0x60           ; cannot enter the requested state
        stc
        jmp svc_return
.ok:
        mov byte [F_AH], 0
        clc
        jmp svc_return

; ext_memory_kb: AX = KiB of memory above 1 MiB (CMOS 30h/31h).
ext_memory_kb:
        mov al, CMOS_EXT_LO + 1
        call cmos_read
        mov ah, al
        mov al, CMOS_EXT_LO
        call cmos_read
        ret

; =============================================================================================
; INT 16h — keyboard services (the ring buffer INT 09h fills).
; =============================================================================================
int16_handler:
        sti
        SVC_ENTER
        mov ax, BDA_SEG
        mov ds, ax
        mov ah, [F_AH]
        cmp ah, 0x00
        je .read
        cmp ah, 0x10
        je .read
        cmp ah, 0x01
        je .peek
        cmp ah, 0x11
        je .peek
        cmp ah, 0x02
        je .flags
        cmp ah, 0x12
        je .ext_flags
        cmp ah, 0x05
        je .stuff
        jmp v_done                      ; 03h typematic and others: nothing to do
.read:
        cli
        mov bx, [BDA_KBD_HEAD]
        cmp bx, [BDA_KBD_TAIL]
        jne .got
        sti
        hlt                             ; sleep until a key (or the timer) interrupts
        jmp .read
.got:
        mov ax, [bx]
        add bx, 2
        cmp bx, [BDA_KBD_END]
        jb .head_ok
        mov bx, [BDA_KBD_START]
.head_ok:
        mov [BDA_KBD_HEAD], bx
        sti
        call .translate
        mov [F_AX], ax
        jmp v_done
.peek:
        cli
        mov bx, [BDA_KBD_HEAD]
        cmp bx, [BDA_KBD_TAIL]
        sti
        je .empty
        mov ax, [bx]
        call .translate
        mov [F_AX], ax
        or ax, 0xFFFF                   ; ZF = 0: a key is waiting
        jmp svc_return_zf
.empty:
        xor ax, ax                      ; ZF = 1: nothing waiting
        jmp svc_return_zf
.flags:
        mov al, [BDA_KBD_FLAGS1]
        mov [F_AL], al
        jmp v_done
.ext_flags:
        mov al, [BDA_KBD_FLAGS1]
        mov ah, [BDA_KBD_FLAGS2]
        mov [F_AX], ax
        jmp v_done
.stuff:
        mov bx, [BDA_KBD_TAIL]
        mov si, bx
        add si, 2
        cmp si, [BDA_KBD_END]
        jb .stuff_nowrap
        mov si, [BDA_KBD_START]
.stuff_nowrap:
        cmp si, [BDA_KBD_HEAD]
        je .full
        mov ax, [F_CX]
        mov [bx], ax
        mov [BDA_KBD_TAIL], si
        mov byte [F_AL], 0
        jmp v_done
.full:
        mov byte [F_AL], 1
        jmp v_done
; the non-enhanced functions report grey keys with ASCII 0 instead of E0h
.translate:
        cmp byte [F_AH], 0x10
        jae .t_out
        cmp al, 0xE0
        jne .t_out
        xor al, al
.t_out:
        ret

; =============================================================================================
; INT 17h — printer: no printer is present (time-out status).
; =============================================================================================
int17_handler:
        mov ah, 0x01
        iret

; =============================================================================================
; INT 1Ah — time of day: the tick counter and the RTC (CMOS) clock and date.
; =============================================================================================
int1a_handler:
        sti
        SVC_ENTER
        mov ax, BDA_SEG
        mov ds, ax
        mov ah, [F_AH]
        cmp ah, 0x00
        je .get_ticks
        cmp ah, 0x01
        je .set_ticks
        cmp ah, 0x02
        je .get_time
        cmp ah, 0x03
        je .set_time
        cmp ah, 0x04
        je .get_date
        cmp ah, 0x05
        je .set_date
        stc
        jmp svc_return
.get_ticks:
        cli
        mov ax, [BDA_TICKS]
        mov [F_DX], ax
        mov ax, [BDA_TICKS+2]
        mov [F_CX], ax
        mov al, [BDA_MIDNIGHT]
        mov [F_AL], al
        mov byte [BDA_MIDNIGHT], 0
        sti
        clc
        jmp svc_return
.set_ticks:
        cli
        mov ax, [F_DX]
        mov [BDA_TICKS], ax
        mov ax, [F_CX]
        mov [BDA_TICKS+2], ax
        mov byte [BDA_MIDNIGHT], 0
        sti
        clc
        jmp svc_return
.get_time:
        call rtc_wait_update
        mov al, CMOS_HOURS
        call cmos_read
        mov [F_CH], al
        mov al, CMOS_MINUTES
        call cmos_read
        mov [F_CL], al
        mov al, CMOS_SECONDS
        call cmos_read
        mov [F_DH], al
        mov al, CMOS_REG_B
        call cmos_read
        and al, 0x01                    ; daylight saving enabled
        mov [F_DL], al
        clc
        jmp svc_return
.set_time:
        mov al, CMOS_HOURS
        mov ah, [F_CH]
        call cmos_write
        mov al, CMOS_MINUTES
        mov ah, [F_CL]
        call cmos_write
        mov al, CMOS_SECONDS
        mov ah, [F_DH]
        call cmos_write
        clc
        jmp svc_return
.get_date:
        call rtc_wait_update
        mov al, CMOS_CENTURY
        call cmos_read
        mov [F_CH], al
        mov al, CMOS_YEAR
        call cmos_read
        mov [F_CL], al
        mov al, CMOS_MONTH
        call cmos_read
        mov [F_DH], al
        mov al, CMOS_DAY
        call cmos_read
        mov [F_DL], al
        clc
        jmp svc_return
.set_date:
        mov al, CMOS_CENTURY
        mov ah, [F_CH]
        call cmos_write
        mov al, CMOS_YEAR
        mov ah, [F_CL]
        call cmos_write
        mov al, CMOS_MONTH
        mov ah, [F_DH]
        call cmos_write
        mov al, CMOS_DAY
        mov ah, [F_DL]
        call cmos_write
        clc
        jmp svc_return

; =============================================================================================
; Helpers: CMOS, RTC, keyboard controller, console and debug output
; =============================================================================================

; cmos_read: AL = register → AL = value. NMI stays disabled (bit 7 of the index).
cmos_read:
        or al, 0x80
        out CMOS_INDEX, al
        in al, CMOS_DATA
        ret

; cmos_write: register AL := AH.
cmos_write:
        or al, 0x80
        out CMOS_INDEX, al
        mov al, ah
        out CMOS_DATA, al
        ret

; rtc_wait_update: wait (bounded) while the RTC reports an update in progress (register A bit 7).
rtc_wait_update:
        push cx
        mov cx, 0x1000
.poll:
        mov al, CMOS_REG_A
        call cmos_read
        test al, 0x80
        jz .out
        loop .poll
.out:
        pop cx
        ret

; bcd_to_bin: AL (BCD) → AL (binary).
bcd_to_bin:
        push cx
        mov ch, al
        and ch, 0x0F
        shr al, 4
        mov cl, 10
        mul cl
        add al, ch
        pop cx
        ret

; rtc_to_ticks (POST): ticks since midnight from the RTC time, 18.2065 ticks per second:
; hours * 65543 + minutes * 1092 + seconds * 18 + seconds * 0.2065 (close enough for a clock
; that only has to agree with the RTC to within a tick or two).
rtc_to_ticks:
        push ds
        mov ax, BDA_SEG
        mov ds, ax
        call rtc_wait_update
        mov al, CMOS_HOURS
        call cmos_read
        call bcd_to_bin
        xor ah, ah
        mov bx, ax                      ; hours
        mov cx, 7
        mul cx                          ; hours * 7 (+ hours * 65536 below)
        mov [BDA_TICKS], ax
        mov [BDA_TICKS+2], bx
        mov al, CMOS_MINUTES
        call cmos_read
        call bcd_to_bin
        xor ah, ah
        mov cx, 1092
        mul cx
        add [BDA_TICKS], ax
        adc [BDA_TICKS+2], dx
        mov al, CMOS_SECONDS
        call cmos_read
        call bcd_to_bin
        xor ah, ah
        mov bx, ax
        mov cx, 18
        mul cx
        add [BDA_TICKS], ax
        adc word [BDA_TICKS+2], 0
        mov ax, bx
        mov cx, 2065
        mul cx
        mov cx, 10000
        div cx
        add [BDA_TICKS], ax
        adc word [BDA_TICKS+2], 0
        pop ds
        ret

; kbc_wait_input: wait (bounded) until the 8042 can accept a byte (status bit 1 clear).
kbc_wait_input:
        push cx
        push ax
        mov cx, 0x1000
.poll:
        in al, KBC_STATUS
        test al, 0x02
        jz .out
        loop .poll
.out:
        pop ax
        pop cx
        ret

; kbc_command: AL → port 64h.
kbc_command:
        call kbc_wait_input
        out KBC_STATUS, al
        ret

; kbc_write_data: AL → port 60h.
kbc_write_data:
        call kbc_wait_input
        out KBC_DATA, al
        ret

; kbc_read: wait (bounded) for the output buffer, AL = byte from port 60h.
kbc_read:
        push cx
        mov cx, 0x1000
.poll:
        in al, KBC_STATUS
        test al, 0x01
        jnz .ready
        loop .poll
.ready:
        in al, KBC_DATA
        pop cx
        ret

; con_puts: print the zero-terminated string at CS:SI with INT 10h teletype (screen + COM1).
con_puts:
        push ax
        push bx
.next:
        cs lodsb
        test al, al
        jz .out
        mov ah, 0x0E
        xor bh, bh
        int 0x10
        jmp .next
.out:
        pop bx
        pop ax
        ret

; con_put_dec32: print DX:AX in decimal.
con_put_dec32:
        push ax
        push bx
        push cx
        push dx
        xor cx, cx                      ; digit count
.divide:
        ; DX:AX / 10 in two 16-bit steps
        push ax
        mov ax, dx
        xor dx, dx
        mov bx, 10
        div bx                          ; AX = high quotient, DX = remainder
        mov bx, ax
        pop ax
        push bx
        mov bx, 10
        div bx                          ; AX = low quotient, DX = digit
        pop bx
        push dx
        inc cx
        mov dx, bx
        mov bx, ax
        or bx, dx
        jnz .divide
.print:
        pop ax
        add al, '0'
        mov ah, 0x0E
        xor bh, bh
        int 0x10
        loop .print
        pop dx
        pop cx
        pop bx
        pop ax
        ret

; dbg_puts: the zero-terminated string at CS:SI to the debug port E9h, with one `rep outsb`
; (a single exit with a count, however long the message).
dbg_puts:
        push ax
        push cx
        push dx
        push si
        push ds
        push cs
        pop ds
        mov dx, si
.length:
        lodsb
        test al, al
        jnz .length
        mov cx, si
        sub cx, dx
        dec cx                          ; without the terminating zero
        mov si, dx
        mov dx, DEBUG_PORT
        rep outsb
        pop ds
        pop si
        pop dx
        pop cx
        pop ax
        ret

; =============================================================================================
; Tables
; =============================================================================================

; (vector, handler) pairs installed by POST; FFh ends the list.
vector_table:
        db 0x08
        dw int08_handler
        db 0x09
        dw int09_handler
        db 0x10
        dw int10_handler
        db 0x11
        dw int11_handler
        db 0x12
        dw int12_handler
        db 0x13
        dw int13_handler
        db 0x14
        dw int14_handler
        db 0x15
        dw int15_handler
        db 0x16
        dw int16_handler
        db 0x17
        dw int17_handler
        db 0x18
        dw int18_handler
        db 0x19
        dw int19_handler
        db 0x1A
        dw int1a_handler
        db 0x1E
        dw diskette_table
        db 0xFF

; INT 1Eh: diskette parameter table (1.44 MB drive values; there is no floppy, but DOS reads it).
diskette_table:
        db 0xDF, 0x02, 0x25, 0x02, 0x12, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08

; INT 15h AH=C0h: system configuration table.
config_table:
        dw 8                            ; bytes that follow
        db 0xFC                         ; model: AT
        db 0x00                         ; submodel
        db 0x00                         ; BIOS revision
        db 0x70                         ; 2nd 8259, RTC, INT 09h calls INT 15h AH=4Fh
        db 0x00, 0x00, 0x00, 0x00

; Set-1 scancode → ASCII, unshifted and shifted (0 = no ASCII code: function keys and so on).
scancode_normal:
        db 0, 27, "1234567890-=", 8, 9
        db "qwertyuiop[]", 13, 0, "asdfghjkl;'`", 0, "\zxcvbnm,./", 0, "*", 0, " "
scancode_count equ $ - scancode_normal
scancode_shift:
        db 0, 27, "!@#$%^&*()_+", 8, 9
        db "QWERTYUIOP{}", 13, 0, "ASDFGHJKL:", 34, "~", 0, "|ZXCVBNM<>?", 0, "*", 0, " "

; =============================================================================================
; Messages
; =============================================================================================
msg_banner:         db "xenlab virtual BIOS 0.1 (80186)", 13, 10, 0
msg_memory:         db "Memory: ", 0
msg_kb:             db " KB conventional", 13, 10, 0
msg_disk:           db "Disk 80h: ", 0
msg_sectors_pio:    db " sectors, INT 13h via ATA PIO", 13, 10, 0
msg_sectors_multiple: db " sectors, INT 13h via ATA PIO, 16-sector blocks", 13, 10, 0
msg_sectors_dma:    db " sectors, INT 13h via ATA bus-master DMA", 13, 10, 0
msg_booting:        db "Booting from hard disk...", 13, 10, 0
msg_boot_other:     db "Only hard disk boot is supported; trying the hard disk.", 13, 10, 0
msg_no_signature:   db "No bootable disk: the boot sector has no 55AA signature.", 13, 10, 0
msg_read_failed:    db "Boot failed: could not read the boot sector.", 13, 10, 0
msg_no_disk:        db "No bootable device: there is no hard disk.", 13, 10, 0
msg_no_boot_device: db "No bootable device.", 13, 10, 0
msg_halted:         db "System halted.", 13, 10, 0
msg_dbg_post:       db "xenlab BIOS: POST", 10, 0
msg_dbg_boot:       db "xenlab BIOS: POST done, INT 19h", 10, 0
msg_dbg_jump:       db "xenlab BIOS: jumping to the boot sector at 0000:7C00", 10, 0
msg_dbg_no_disk:    db "xenlab BIOS: no ATA disk on the primary channel", 10, 0
msg_dbg_poweroff:   db "xenlab BIOS: APM power off", 10, 0

; =============================================================================================
; Reset vector, date, model byte
; =============================================================================================
        times 0xFFF0 - ($ - $$) db 0
reset_vector:
        jmp 0xF000:post
        db "11/21/26"
        times 0xFFFE - ($ - $$) db 0
        db 0xFC                         ; model: PC/AT
        db 0x00
