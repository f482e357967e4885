#!/usr/bin/env bash
# Writes the seed inputs into fuzz/corpus/<target>/ (git-ignored): valid proofs, an
# evidence bundle, a ledger copy, a cosigned checkpoint and tile paths from the targets'
# own ledger (CUSTOS_FUZZ_SEEDS), and leaked files and identifiers like those of the
# tests, NDJSON imports and the API's JSON bodies. Run by fuzz/run.sh after the build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
host="$(rustc -vV | sed -n 's/^host: //p')"
bin="$here/target/$host/release"

empty="$(mktemp -d)"
CUSTOS_FUZZ_SEEDS="$here/corpus" "$bin/tile_path" -runs=0 "$empty" >/dev/null 2>&1
rmdir "$empty"

mkdir -p corpus/leak_file corpus/normalize
printf 'name,phone,email\nZhang Wei,13800138000,zhang.wei@example.com\nLi Na,+86 139 0013 9000,\n' >corpus/leak_file/csv
printf 'phone\temail\n138-0013-8000\tli.na@example.com\n' >corpus/leak_file/tsv
printf '13800138000\n13900139000\nwang.fang@example.cn\n' >corpus/leak_file/lines
printf '\xef\xbb\xbf\xe5\xa7\x93\xe5\x90\x8d,\xe6\x89\x8b\xe6\x9c\xba\n\xe5\xbc\xa0\xe4\xbc\x9f,13800138000\n' >corpus/leak_file/utf8-bom
printf '\xff\xfep\x00h\x00o\x00n\x00e\x00\n\x001\x003\x008\x000\x000\x001\x003\x008\x000\x000\x000\x00\n\x00' >corpus/leak_file/utf16
printf '\xd0\xd5\xc3\xfb,\xca\xd6\xbb\xfa\n\xd5\xc5\xce\xb0,13800138000\n' >corpus/leak_file/gb18030
printf 'account_id;phone\nACC-0012345678;13800138000\n' >corpus/leak_file/semicolon
printf '+86 138 0013 8000' >corpus/normalize/phone
printf '(021) 6123-4567' >corpus/normalize/landline
printf 'Zhang.Wei@Example.COM' >corpus/normalize/email
printf 'acc-0012345678' >corpus/normalize/account

mkdir -p corpus/scenario corpus/config
cp ../scenarios/*.toml corpus/scenario/
printf '[detector.score.warmup]\nmin_peers = 0\n\n[relay]\nnumbers = ["+8610000001", "+8610000002"]\n\n[scim]\ngroups = [{ group = "Support", role = "support" }]\n' >corpus/config/demo
printf '[quota.support]\ncustomers_per_day = 40\nreveals_per_hour = 10\n\n[keys]\nprovider = "file"\n' >corpus/config/quota

mkdir -p corpus/ndjson_import corpus/json_body
printf '{"name":"Zhang Wei","phone":"13800138000","email":"zhang.wei@example.com"}\n{"name":"Li Na","account_id":"ACC-0012345678","attributes":{"tier":"gold"}}\n' >corpus/ndjson_import/two
printf '\n{"name":"Wang Fang","phone":"+86 139 0013 9000"}\r\n\n' >corpus/ndjson_import/blank-lines
printf '{"name":"Chen Jie","phone":"(021) 6123-4567","attributes":{"vip":true,"since":2019}}\n{"name":"x","unknown":1}\n' >corpus/ndjson_import/refused
# The first byte picks the body type (fuzz_targets/json_body.rs), in this order.
body() { printf "\\x$(printf %02x "$1")%s" "$2" >"corpus/json_body/$1"; }
body 0 '{"name":"Zhang Wei","phone":"13800138000","email":"zhang.wei@example.com","attributes":{"tier":"gold"}}'
body 1 '{"fields":["phone","email"],"case":"case-01","reason":"caller asked about this account","step_up_reason":null}'
body 2 '{"customer":"cus-01","assignee":"agent-1","channel":"phone","reason":"caller asked about this account","inbound":true,"requested_by":null}'
body 3 '{"channel":"phone","caller":{"phone":"+86 138 0013 8000"},"agent":"agent-1","at":1764900000000,"reason":"billing"}'
body 4 '{"customer":"cus-01","case":"case-01","fields":["phone"],"purpose":"customer lost the phone and calls from a relative'"'"'s"}'
body 5 '{"reason":"verified by the account question","minutes":10}'
body 6 '{"customer":"cus-01","case":"case-01","fields":["email"],"reason":"fraud in progress on this account"}'
body 7 '{"case":"case-01","channel":"sms","subject":"Your order","text":"We will call you back."}'
body 8 '{"agent":"agent-1","virtual_number":"+8610000001"}'
body 9 '{"valid_hours":24}'
body 10 '{"id":"agent-7","name":"Liu Yang","role":"support","org":"acme"}'

mkdir -p corpus/scim
# The first byte picks the request (fuzz_targets/scim.rs): 0 a filter, 1 a User body,
# 2 a Group body, 3 a PATCH of a User, 4 a PATCH of a Group.
scim() { printf "\\x$(printf %02x "$1")%s" "$3" >"corpus/scim/$2"; }
scim 0 filter 'userName eq "agent-7" and (active pr or emails[type eq "work" and value co "@example.com"])'
scim 1 user '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"agent-9","displayName":"Wang Fang","active":"True","externalId":"00u9"}'
scim 2 group '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Support","members":[{"value":"agent-7","type":"User"},{"value":"agent-8"}]}'
scim 3 user-patch '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false},{"op":"Add","value":{"displayName":"Liu Y."}}]}'
scim 4 group-patch '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"agent-8\"]"},{"op":"add","path":"members","value":[{"value":"agent-9"}]}]}'
