-- qkdlink.lua - Wireshark/tshark dissector for the qkdlink key-ID protocol
-- (docs/protocol.md): IEEE 802 OUI-extended Ethertype 0x88B7 frames that carry
-- ETSI GS QKD 014 key_IDs between sites.
--
-- It takes over Ethertype 0x88B7, decodes frames of the configured OUI/PID
-- (preferences qkdlink.oui and qkdlink.pid, default AC-DE-48 / 0x514B) and hands
-- every other OUI/PID back to the dissector that owned 0x88B7 before (the
-- built-in ieee802a). Every read is bounded: a truncated or malformed frame
-- gets expert info, never a Lua error. The ICV is shown, not verified (that
-- needs the channel secret: `qkd88b7 decode FILE --secret FILE`).
--
-- Load: copy to ~/.local/lib/wireshark/plugins/, or
--   tshark -X lua_script:proto88b7/wireshark/qkdlink.lua -r FILE.pcap -V
-- See docs/wireshark.md.

local OUI_DEFAULT = 0xACDE48
local PID_DEFAULT = 0x514B
local HDR_LEN = 24
local ICV_LEN = 16
local PDU_MIN = HDR_LEN + 1 + ICV_LEN
local PDU_MAX = 1500
local ETH_MIN = 60
local SENDER_MAX = 32
local KEYID_MAX = 128
local KEYS_MAX = 32
local DETAIL_MAX = 64
local SLOT_MAX = 63
local HELLO_FIXED = 28
local INTERVAL_MAX = 3600
local TIME_MAX = 253402300799 -- 9999-12-31 23:59:59 UTC

local T_HELLO, T_ANNOUNCE, T_ACK = 1, 2, 3
local TLV_ACTIVATION, TLV_SLOT, TLV_DETAIL = 0x01, 0x02, 0x03

local qkdlink = Proto("qkdlink", "qkdlink key-ID protocol")

local types = { [1] = "HELLO", [2] = "ANNOUNCE", [3] = "ACK" }
local roles = { [1] = "master", [2] = "slave" }
local states = { [0] = "IDLE", [1] = "ROTATING", [2] = "RESYNC" }
local results = {
	[0] = "OK", [1] = "KME_NOT_FOUND", [2] = "KME_ERROR", [3] = "COMMIT_FAILED",
	[4] = "BUSY", [5] = "UNKNOWN_CHANNEL", [6] = "STALE", [7] = "INTERNAL",
	[8] = "ROUTER_BUSY",
}
local tlv_types = {
	[TLV_ACTIVATION] = "ACTIVATION_TIME", [TLV_SLOT] = "KEYCHAIN_SLOT", [TLV_DETAIL] = "DETAIL",
}
local tlv_home = { [TLV_ACTIVATION] = T_ANNOUNCE, [TLV_SLOT] = T_ANNOUNCE, [TLV_DETAIL] = T_ACK }
local critical_names = { "yes (a receiver that does not know it drops the frame)",
	"no (a receiver that does not know it skips it)" }

local f = {
	oui = ProtoField.uint24("qkdlink.oui", "OUI", base.HEX),
	pid = ProtoField.uint16("qkdlink.pid", "Protocol ID", base.HEX),
	version = ProtoField.uint8("qkdlink.version", "Version", base.DEC),
	type = ProtoField.uint8("qkdlink.type", "Type", base.DEC, types),
	flags = ProtoField.uint8("qkdlink.flags", "Flags", base.HEX),
	length = ProtoField.uint16("qkdlink.length", "Length", base.DEC, nil, nil,
		"Octets of the PDU, OUI to ICV"),
	secret_id = ProtoField.uint8("qkdlink.secret_id", "Secret ID", base.DEC),
	sender_len = ProtoField.uint8("qkdlink.sender_len", "Sender ID length", base.DEC),
	channel = ProtoField.uint32("qkdlink.channel", "Channel", base.DEC),
	epoch = ProtoField.uint32("qkdlink.epoch", "Epoch", base.DEC),
	seq = ProtoField.uint32("qkdlink.seq", "Sequence number", base.DEC),
	sender = ProtoField.string("qkdlink.sender", "Sender ID"),
	role = ProtoField.uint8("qkdlink.role", "Role", base.DEC, roles),
	state = ProtoField.uint8("qkdlink.state", "State", base.DEC, states),
	interval = ProtoField.uint16("qkdlink.interval", "Hello interval (s)", base.DEC),
	current_rotation = ProtoField.uint32("qkdlink.current_rotation", "Current rotation ID",
		base.DEC),
	pending_rotation = ProtoField.uint32("qkdlink.pending_rotation", "Pending rotation ID",
		base.DEC),
	digest = ProtoField.bytes("qkdlink.digest", "Current key digest"),
	rotation = ProtoField.uint32("qkdlink.rotation", "Rotation ID", base.DEC),
	key_count = ProtoField.uint8("qkdlink.key_count", "Key count", base.DEC),
	key_id_len = ProtoField.uint8("qkdlink.key_id_len", "key_ID length", base.DEC),
	key_id = ProtoField.string("qkdlink.key_id", "key_ID"),
	result = ProtoField.uint8("qkdlink.result", "Result", base.DEC, results),
	tlv = ProtoField.none("qkdlink.tlv", "TLV"),
	tlv_type = ProtoField.uint8("qkdlink.tlv.type", "Type", base.HEX, tlv_types),
	tlv_critical = ProtoField.bool("qkdlink.tlv.critical", "Critical", 8, critical_names, 0x80),
	tlv_length = ProtoField.uint8("qkdlink.tlv.length", "Length", base.DEC),
	tlv_value = ProtoField.bytes("qkdlink.tlv.value", "Value"),
	activation_time = ProtoField.absolute_time("qkdlink.activation_time", "Activation time",
		base.UTC),
	keychain_slot = ProtoField.uint8("qkdlink.keychain_slot", "Key-chain slot", base.DEC),
	detail = ProtoField.string("qkdlink.detail", "Detail"),
	body = ProtoField.bytes("qkdlink.body", "Undecoded body"),
	icv = ProtoField.bytes("qkdlink.icv", "ICV (HMAC-SHA256/128)"),
	icv_len = ProtoField.uint8("qkdlink.icv_len", "ICV length", base.DEC),
	padding = ProtoField.bytes("qkdlink.padding", "Padding"),
	trailing = ProtoField.bytes("qkdlink.trailing", "Trailing data (not authenticated)"),
}
qkdlink.fields = {
	f.oui, f.pid, f.version, f.type, f.flags, f.length, f.secret_id, f.sender_len, f.channel,
	f.epoch, f.seq, f.sender, f.role, f.state, f.interval, f.current_rotation,
	f.pending_rotation, f.digest, f.rotation, f.key_count, f.key_id_len, f.key_id, f.result,
	f.tlv, f.tlv_type, f.tlv_critical, f.tlv_length, f.tlv_value, f.activation_time,
	f.keychain_slot, f.detail, f.body, f.icv, f.icv_len, f.padding, f.trailing,
}

-- Expert infos, named after the receiver's drop reasons of protocol.md §6.
local G, S = expert.group, expert.severity
local ex = {
	truncated = ProtoExpert.new("qkdlink.expert.truncated", "Truncated frame",
		G.MALFORMED, S.ERROR),
	bad_version = ProtoExpert.new("qkdlink.expert.bad_version", "Unknown version",
		G.PROTOCOL, S.ERROR),
	bad_length = ProtoExpert.new("qkdlink.expert.bad_length", "Length out of range",
		G.MALFORMED, S.ERROR),
	trailing = ProtoExpert.new("qkdlink.expert.trailing",
		"Unauthenticated data after the PDU", G.PROTOCOL, S.WARN),
	unknown_type = ProtoExpert.new("qkdlink.expert.unknown_type", "Unknown message type",
		G.UNDECODED, S.WARN),
	malformed = ProtoExpert.new("qkdlink.expert.malformed", "Malformed PDU",
		G.MALFORMED, S.ERROR),
	too_many_keys = ProtoExpert.new("qkdlink.expert.too_many_keys", "Too many key_IDs",
		G.PROTOCOL, S.ERROR),
	unsupported_tlv = ProtoExpert.new("qkdlink.expert.unsupported_tlv",
		"Unknown critical TLV", G.UNDECODED, S.ERROR),
	unknown_tlv = ProtoExpert.new("qkdlink.expert.unknown_tlv", "Unknown TLV, skipped",
		G.UNDECODED, S.NOTE),
	unknown_value = ProtoExpert.new("qkdlink.expert.unknown_value", "Unknown value",
		G.PROTOCOL, S.WARN),
	flags = ProtoExpert.new("qkdlink.expert.flags", "Reserved flags set",
		G.PROTOCOL, S.NOTE),
	failure = ProtoExpert.new("qkdlink.expert.failure", "ACK reports a failure",
		G.RESPONSE_CODE, S.NOTE),
	internal = ProtoExpert.new("qkdlink.expert.internal", "Dissector error",
		G.MALFORMED, S.ERROR),
}
qkdlink.experts = {
	ex.truncated, ex.bad_version, ex.bad_length, ex.trailing, ex.unknown_type, ex.malformed,
	ex.too_many_keys, ex.unsupported_tlv, ex.unknown_tlv, ex.unknown_value, ex.flags,
	ex.failure, ex.internal,
}

-- The experts that are a receiver's drop reasons, in the order of its checks
-- (protocol.md §6): the Info column names the first a receiver would hit.
local drop_reasons = {
	{ ex.bad_version, "bad_version" }, { ex.bad_length, "bad_length" },
	{ ex.truncated, "truncated" }, { ex.trailing, "trailing" },
	{ ex.unknown_type, "unknown_type" }, { ex.malformed, "malformed" },
	{ ex.too_many_keys, "too_many_keys" }, { ex.unsupported_tlv, "unsupported_tlv" },
}
local drop_rank = {}
for i, d in ipairs(drop_reasons) do
	drop_rank[d[1]] = i
end

-- The lowest drop_rank flagged in the frame being dissected (dissection is
-- single-threaded; reset per frame).
local frame_drop = nil

-- Adds expert info e to item and remembers the drop reason it stands for.
local function flag(item, e, text)
	item:add_proto_expert_info(e, text)
	local r = drop_rank[e]
	if r ~= nil and (frame_drop == nil or r < frame_drop) then
		frame_drop = r
	end
end

-- The Info column: the parts joined, then the drop reason if any.
local function set_info(pinfo, info)
	if frame_drop ~= nil then
		info[#info + 1] = "[" .. drop_reasons[frame_drop][2] .. "]"
	end
	pinfo.cols.info = table.concat(info, " ")
end

-- ---- preferences: which OUI and PID are ours ----

local our_oui, our_pid = OUI_DEFAULT, PID_DEFAULT

qkdlink.prefs.oui = Pref.string("OUI / CID", "AC-DE-48",
	"The 3-octet OUI or CID of qkdlink frames, e.g. AC-DE-48, ac:de:48 or 0xACDE48 "
	.. "(as configured on the agents). Frames of other OUIs go to the IEEE 802a dissector.")
qkdlink.prefs.pid = Pref.string("Protocol ID", "0x514B",
	"The 2-octet protocol identifier of qkdlink frames in hex, e.g. 0x514B (as configured "
	.. "on the agents). Frames of other PIDs go to the IEEE 802a dissector.")

-- Parses hex with optional 0x and separators (- : . space); nil if not 1..digits digits.
local function parse_hex(s, digits)
	if type(s) ~= "string" then
		return nil
	end
	s = s:gsub("^%s*0[xX]", ""):gsub("[%s%-:%.]", "")
	if #s < 1 or #s > digits or s:find("[^%x]") then
		return nil
	end
	return tonumber(s, 16)
end

function qkdlink.prefs_changed()
	local oui = parse_hex(qkdlink.prefs.oui, 6)
	local pid = parse_hex(qkdlink.prefs.pid, 4)
	if oui == nil then
		report_failure("qkdlink: OUI preference '" .. tostring(qkdlink.prefs.oui)
			.. "' is not 3 octets of hex; keeping " .. string.format("%06X", our_oui))
	else
		our_oui = oui
	end
	if pid == nil then
		report_failure("qkdlink: PID preference '" .. tostring(qkdlink.prefs.pid)
			.. "' is not 2 octets of hex; keeping " .. string.format("0x%04X", our_pid))
	else
		our_pid = pid
	end
end

-- ---- helpers ----

-- The string with every octet outside 0x20..0x7E shown as '.', for columns.
local function show(s)
	return (s:gsub("[^ -~]", "."))
end

-- True if s is 1..max octets of 0x21..0x7E (lo_space: 0x20..0x7E).
local function valid_str(s, max, lo_space)
	local bad = lo_space and "[^ -~]" or "[^!-~]"
	return #s >= 1 and #s <= max and not s:find(bad)
end

-- A cursor over tvb from c.off up to c.lim. take() returns the next n octets
-- as a TvbRange, or nil (with expert info, and c.stop set) if they do not fit.
local function cursor(tvb, tree, off, lim, short_expert, short_text)
	return { tvb = tvb, tree = tree, off = off, lim = lim, stop = false,
		short_expert = short_expert, short_text = short_text }
end

local function take(c, n, what)
	if c.stop then
		return nil
	end
	if n < 0 or c.off + n > c.lim then
		flag(c.tree, c.short_expert, string.format(
			"%s: %s needs %d octets at offset %d, %d left", c.short_text, what, n,
			c.off, math.max(c.lim - c.off, 0)))
		c.stop = true
		return nil
	end
	local r = c.tvb(c.off, n)
	c.off = c.off + n
	return r
end

-- Adds field from the next n octets; returns its value (uint) and TreeItem.
local function add_uint(c, tree, field, n, what)
	local r = take(c, n, what)
	if r == nil then
		return nil
	end
	return r:uint(), tree:add(field, r)
end

-- ---- message bodies ----

local function dissect_hello(c, tree, info)
	local role, ti = add_uint(c, tree, f.role, 1, "role")
	if role == nil then
		return
	end
	if roles[role] == nil then
		flag(ti, ex.malformed, "Role must be 1 (master) or 2 (slave)")
	end
	local state
	state, ti = add_uint(c, tree, f.state, 1, "state")
	if state == nil then
		return
	end
	if states[state] == nil then
		flag(ti, ex.unknown_value, "Unknown state " .. state)
	end
	info[#info + 1] = roles[role] or ("role=" .. role)
	info[#info + 1] = states[state] or ("state=" .. state)
	local interval
	interval, ti = add_uint(c, tree, f.interval, 2, "hello interval")
	if interval == nil then
		return
	end
	if interval < 1 or interval > INTERVAL_MAX then
		flag(ti, ex.malformed, "Hello interval must be 1.."
			.. INTERVAL_MAX .. " s")
	end
	if add_uint(c, tree, f.current_rotation, 4, "current rotation ID") == nil or
	    add_uint(c, tree, f.pending_rotation, 4, "pending rotation ID") == nil then
		return
	end
	local r = take(c, 16, "current key digest")
	if r == nil then
		return
	end
	ti = tree:add(f.digest, r)
	if not r:raw():find("[^%z]") then
		ti:append_text(" (no key)")
	end
end

local function dissect_announce(c, tree, info)
	local rot, ti = add_uint(c, tree, f.rotation, 4, "rotation ID")
	if rot == nil then
		return
	end
	if rot == 0 then
		flag(ti, ex.malformed, "Rotation ID must be 1 or more")
	end
	local count
	count, ti = add_uint(c, tree, f.key_count, 1, "key count")
	if count == nil then
		return
	end
	info[#info + 1] = "rot=" .. rot
	info[#info + 1] = "keys=" .. count
	if count == 0 then
		flag(ti, ex.malformed, "Key count must be 1 or more")
	elseif count > KEYS_MAX then
		flag(ti, ex.too_many_keys, "Key count " .. count
			.. " is over the limit of " .. KEYS_MAX)
	end
	for i = 1, count do
		local lr = take(c, 1, "length of key_ID " .. i)
		if lr == nil then
			return
		end
		local len = lr:uint()
		local kr = len > 0 and take(c, len, "key_ID " .. i) or nil
		if len > 0 and kr == nil then
			return
		end
		local s = kr and kr:raw() or ""
		local kt = tree:add(c.tvb(lr:offset(), 1 + len),
			string.format("key_ID %d: %s", i, show(s)))
		kt:add(f.key_id_len, lr)
		if kr ~= nil then
			kt:add(f.key_id, kr)
		end
		if not valid_str(s, KEYID_MAX, false) then
			flag(kt, ex.malformed, "A key_ID must be 1.." .. KEYID_MAX
				.. " octets of printable ASCII 0x21..0x7E")
		end
	end
end

local function dissect_ack(c, tree, info)
	local rot, ti = add_uint(c, tree, f.rotation, 4, "rotation ID")
	if rot == nil then
		return
	end
	if rot == 0 then
		flag(ti, ex.malformed, "Rotation ID must be 1 or more")
	end
	local res
	res, ti = add_uint(c, tree, f.result, 1, "result")
	if res == nil then
		return
	end
	info[#info + 1] = "rot=" .. rot
	info[#info + 1] = results[res] or ("result=" .. res)
	if results[res] == nil then
		flag(ti, ex.unknown_value, "Unknown result " .. res
			.. " (a receiver treats it as a failure)")
	elseif res ~= 0 then
		flag(ti, ex.failure, "The slave reports " .. results[res])
	end
end

-- TLVs from c.off to c.lim exactly (protocol.md §3.2).
local function dissect_tlvs(c, tree, mtype, info)
	local seen = {}
	while not c.stop and c.off < c.lim do
		local start = c.off
		local hr = take(c, 2, "TLV header")
		if hr == nil then
			return
		end
		local ttype, tlen = hr(0, 1):uint(), hr(1, 1):uint()
		local vr = tlen > 0 and take(c, tlen, "TLV value") or nil
		if tlen > 0 and vr == nil then
			return
		end
		local name = tlv_types[ttype] or string.format("unknown 0x%02x", ttype)
		local tt = tree:add(f.tlv, c.tvb(start, 2 + tlen))
		tt:set_text(string.format("TLV %s, %d octet%s", name, tlen, tlen == 1 and "" or "s"))
		tt:add(f.tlv_type, hr(0, 1))
		tt:add(f.tlv_critical, hr(0, 1))
		tt:add(f.tlv_length, hr(1, 1))
		local home = tlv_home[ttype]
		if home == nil then
			if vr ~= nil then
				tt:add(f.tlv_value, vr)
			end
			if ttype >= 0x80 then -- bit 7: critical
				flag(tt, ex.unsupported_tlv, string.format(
					"Unknown critical TLV 0x%02x: a receiver drops the frame", ttype))
			else
				flag(tt, ex.unknown_tlv, string.format(
					"Unknown TLV 0x%02x: a receiver skips it", ttype))
			end
		else
			local ok = true
			if seen[ttype] then
				flag(tt, ex.malformed, name .. " appears twice")
				ok = false
			end
			seen[ttype] = true
			if home ~= mtype then
				flag(tt, ex.malformed, name .. " is not defined for "
					.. (types[mtype] or "this message"))
				ok = false
			end
			if ttype == TLV_ACTIVATION and tlen == 8 then
				local secs = vr:uint64()
				if secs <= UInt64(TIME_MAX) then
					local n = secs:tonumber()
					tt:add(f.activation_time, vr, NSTime(n, 0))
					tt:append_text(": " .. os.date("!%Y-%m-%d %H:%M:%S UTC", n))
					if ok then
						info[#info + 1] = "act=" .. os.date("!%Y-%m-%dT%H:%M:%SZ", n)
					end
				else
					tt:add(f.tlv_value, vr)
					flag(tt, ex.unknown_value,
						"Activation time " .. tostring(secs) .. " is past year 9999")
				end
			elseif ttype == TLV_SLOT and tlen == 1 then
				local slot = vr:uint()
				local st = tt:add(f.keychain_slot, vr)
				tt:append_text(": " .. slot)
				if slot > SLOT_MAX then
					flag(st, ex.malformed, "Key-chain slot must be 0.."
						.. SLOT_MAX)
				elseif ok then
					info[#info + 1] = "slot=" .. slot
				end
			elseif ttype == TLV_DETAIL and tlen >= 1 and tlen <= DETAIL_MAX then
				tt:add(f.detail, vr)
				local s = vr:raw()
				tt:append_text(": " .. show(s))
				if not valid_str(s, DETAIL_MAX, true) then
					flag(tt, ex.malformed,
						"DETAIL must be printable ASCII 0x20..0x7E")
				end
			else
				if vr ~= nil then
					tt:add(f.tlv_value, vr)
				end
				flag(tt, ex.malformed, string.format(
					"%s has the wrong length %d", name, tlen))
			end
		end
	end
end

-- ---- the PDU ----

local function dissect_pdu(tvb, pinfo, tree)
	local avail = tvb:len()
	frame_drop = nil
	pinfo.cols.protocol = "QKDLINK"
	local ti = tree:add(qkdlink, tvb())
	ti:add(f.oui, tvb(0, 3))
	ti:add(f.pid, tvb(3, 2))
	if avail < tvb:reported_len() then
		flag(ti, ex.truncated, string.format(
			"Captured %d of %d octets (snap length)", avail, tvb:reported_len()))
	end
	local info = {}
	local hc = cursor(tvb, ti, 5, avail, ex.truncated, "Truncated")

	local version, vi = add_uint(hc, ti, f.version, 1, "version")
	if version == nil then
		set_info(pinfo, { "qkdlink" })
		return avail
	end
	if version ~= 1 then
		flag(vi, ex.bad_version, "Version " .. version
			.. " is not 1: not decoded")
		if avail > 6 then
			ti:add(f.body, tvb(6))
		end
		set_info(pinfo, { "qkdlink version " .. version })
		return avail
	end

	local mtype, tyi = add_uint(hc, ti, f.type, 1, "type")
	local flags, fi = add_uint(hc, ti, f.flags, 1, "flags")
	local plen, li = add_uint(hc, ti, f.length, 2, "length")
	add_uint(hc, ti, f.secret_id, 1, "secret ID")
	local slen, sli = add_uint(hc, ti, f.sender_len, 1, "sender ID length")
	local channel, ci = add_uint(hc, ti, f.channel, 4, "channel")
	local epoch, ei = add_uint(hc, ti, f.epoch, 4, "epoch")
	local seq, qi = add_uint(hc, ti, f.seq, 4, "sequence number")
	local tname = mtype and (types[mtype] or ("type " .. mtype)) or "qkdlink"
	info[1] = tname
	if seq == nil then
		set_info(pinfo, info)
		return avail
	end
	if flags ~= 0 then
		flag(fi, ex.flags, "Flags are reserved: senders send 0")
	end
	if channel == 0 then
		flag(ci, ex.malformed, "Channel must be 1 or more")
	end
	if epoch == 0 then
		flag(ei, ex.malformed, "Epoch must be 1 or more")
	end
	if seq == 0 then
		flag(qi, ex.malformed, "Sequence number must be 1 or more")
	end
	table.insert(info, 2, "ch=" .. channel)
	ti:append_text(string.format(", %s, Channel %d", tname, channel))

	-- Where the PDU ends, where the ICV is (only if Length is usable).
	local body_lim = avail
	local icv_off = nil
	if plen < PDU_MIN or plen > PDU_MAX then
		flag(li, ex.bad_length, string.format(
			"Length %d is not %d..%d", plen, PDU_MIN, PDU_MAX))
	end
	if plen > avail then
		flag(li, ex.truncated, string.format(
			"Length says %d octets, the frame holds %d", plen, avail))
	elseif plen >= HDR_LEN + ICV_LEN then
		icv_off = plen - ICV_LEN
		body_lim = icv_off
	end

	local bc = cursor(tvb, ti, HDR_LEN, body_lim,
		icv_off and ex.malformed or ex.truncated,
		icv_off and "Malformed (does not fit before the ICV)" or "Truncated")
	local sr = nil
	if slen > 0 then
		sr = take(bc, slen, "sender ID")
	else
		bc.stop = true
	end
	if sr ~= nil then
		local s = sr:raw()
		local si = ti:add(f.sender, sr)
		if not valid_str(s, SENDER_MAX, false) then
			flag(si, ex.malformed, "The sender ID must be 1.." .. SENDER_MAX
				.. " octets of printable ASCII 0x21..0x7E")
		end
		ti:append_text(", Sender " .. show(s))
	elseif slen == 0 then
		flag(sli, ex.malformed, "The sender ID must be 1.." .. SENDER_MAX
			.. " octets")
	end

	if not bc.stop then
		if mtype == T_HELLO then
			if bc.lim - bc.off < HELLO_FIXED and icv_off then
				bc.short_text = "Malformed (HELLO needs 28 octets before the ICV)"
			end
			dissect_hello(bc, ti, info)
		elseif mtype == T_ANNOUNCE then
			dissect_announce(bc, ti, info)
			info[#info + 1] = "seq=" .. seq
		elseif mtype == T_ACK then
			dissect_ack(bc, ti, info)
		else
			flag(tyi, ex.unknown_type, "Unknown message type " .. mtype
				.. ": a receiver drops the frame")
			if bc.off < bc.lim then
				ti:add(f.body, tvb(bc.off, bc.lim - bc.off))
			end
			bc.off = bc.lim
		end
	end
	if icv_off and not bc.stop and (mtype == T_HELLO or mtype == T_ANNOUNCE or
	    mtype == T_ACK) then
		dissect_tlvs(bc, ti, mtype, info)
	end
	if bc.stop then
		if bc.off < bc.lim then
			ti:add(f.body, tvb(bc.off, bc.lim - bc.off))
		end
	end

	if icv_off then
		local ir = tvb(icv_off, ICV_LEN)
		local ii = ti:add(f.icv, ir)
		ii:add(f.icv_len, ir, ICV_LEN):set_generated()
		if plen < avail then
			local rest = tvb(plen)
			-- Ethernet padding is allowed when the untagged frame is at most 60 octets.
			if 14 + tvb:reported_len() <= ETH_MIN then
				ti:add(f.padding, rest)
			else
				flag(ti:add(f.trailing, rest), ex.trailing, string.format(
					"%d octets after the PDU in a frame over %d octets: a receiver drops it",
					avail - plen, ETH_MIN))
			end
		end
	elseif body_lim > bc.off and not bc.stop then
		ti:add(f.body, tvb(bc.off, body_lim - bc.off))
	end

	set_info(pinfo, info)
	return avail
end

-- ---- registration ----

local ethertype = DissectorTable.get("ethertype")
local previous = ethertype:get_dissector(0x88B7) or Dissector.get("data")

function qkdlink.dissector(tvb, pinfo, tree)
	if tvb:len() < 5 or tvb(0, 3):uint() ~= our_oui or tvb(3, 2):uint() ~= our_pid then
		return previous:call(tvb, pinfo, tree)
	end
	local ok, res = pcall(dissect_pdu, tvb, pinfo, tree)
	if ok then
		return res
	end
	-- A bug here must not hide the frame: say so and keep going.
	tree:add_proto_expert_info(ex.internal, "qkdlink.lua: " .. tostring(res))
	pinfo.cols.info = "qkdlink [dissector error]"
	return tvb:len()
end

ethertype:add(0x88B7, qkdlink)
