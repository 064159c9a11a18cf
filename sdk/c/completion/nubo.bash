# bash completion for nubo(1). Install as /usr/share/bash-completion/completions/nubo.

_nubo() {
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    }
    local globals="--profile --endpoint --output --help --version"

    case $prev in
    --output | -o)
        COMPREPLY=($(compgen -W "table json csv" -- "$cur"))
        return
        ;;
    --profile)
        local cfg=${NUBO_CONFIG_FILE:-${XDG_CONFIG_HOME:-$HOME/.config}/nubo/config}
        local profiles=$(sed -n 's/^\[\(profile \)\{0,1\}\([^]]*\)\].*/\2/p' "$cfg" 2>/dev/null)
        COMPREPLY=($(compgen -W "$profiles" -- "$cur"))
        return
        ;;
    --type)
        if [[ " ${words[*]} " == *" keypair "* ]]; then
            COMPREPLY=($(compgen -W "rsa ed25519" -- "$cur"))
        elif [[ " ${words[*]} " == *" events "* ]]; then
            COMPREPLY=($(compgen -W "instance task" -- "$cur"))
        fi
        return
        ;;
    --role)
        COMPREPLY=($(compgen -W "admin member reader desktop" -- "$cur"))
        return
        ;;
    --format)
        COMPREPLY=($(compgen -W "raw qcow2 vhd vmdk ova" -- "$cur"))
        return
        ;;
    --proto)
        COMPREPLY=($(compgen -W "tcp udp icmp all" -- "$cur"))
        return
        ;;
    --tenancy)
        COMPREPLY=($(compgen -W "default dedicated" -- "$cur"))
        return
        ;;
    --user-data-file | --out | --public-key-file)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --state)
        if [[ " ${words[*]} " == *" host "* ]]; then
            COMPREPLY=($(compgen -W "up disabled draining" -- "$cur"))
        fi
        return
        ;;
    --endpoint | --image | --count | --key | --zone | --tag | --timeout | --filter | \
        --name | --description | --limit | --from | --to | --tenant | --action | --error-code | \
        --max-* | --placement-group | --partition | --agent-url | --vcpus | --memory-mib | \
        --disk-gib | --ephemeral-gib | --reserved-* | --*-ratio | --traits | --dedicated-tenant | --range | \
        --architecture | --image-type | --client-token | --owner | --cidr | --vpc | --subnet | \
        --private-ip | --sg | --from-group | --port | --icmp-type | --icmp-code | --instance | \
        --interface | --asn | --ip | --device-name | --customer-gateway | --vpn-gateway | \
        --client-cidr | --public-key | --destination | --gateway | --size | --spares | --idle-stop | \
        --part-size | --resume | --last-event-id)
        return
        ;;
    esac

    # The words so far, without global options and their values.
    local args=() i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --profile | --endpoint | --output | -o) ((i++)) ;;
        -*) ;;
        *) args+=("${words[i]}") ;;
        esac
    done

    local opts=""
    local host_opts="--vcpus --memory-mib --disk-gib --reserved-vcpus --reserved-memory-mib --reserved-disk-gib --cpu-ratio --memory-ratio --disk-ratio --traits --dedicated-tenant"
    case "${args[*]}" in
    "") COMPREPLY=($(compgen -W "instance image vpc subnet sg address vpn igw route-table remote-access keypair tag region zone type usage invoice budget vdi admin password events $globals" -- "$cur")); return ;;
    address) COMPREPLY=($(compgen -W "allocate list show associate disassociate release" -- "$cur")); return ;;
    vpn) COMPREPLY=($(compgen -W "gateway customer-gateway connection" -- "$cur")); return ;;
    "vpn gateway") COMPREPLY=($(compgen -W "create list show attach detach delete" -- "$cur")); return ;;
    "vpn customer-gateway") COMPREPLY=($(compgen -W "create list show delete" -- "$cur")); return ;;
    "vpn connection") COMPREPLY=($(compgen -W "create list show route-add route-remove delete" -- "$cur")); return ;;
    igw) COMPREPLY=($(compgen -W "create list show attach detach delete" -- "$cur")); return ;;
    route-table) COMPREPLY=($(compgen -W "create list show delete route associate disassociate" -- "$cur")); return ;;
    "route-table route") COMPREPLY=($(compgen -W "add delete" -- "$cur")); return ;;
    remote-access) COMPREPLY=($(compgen -W "create list show delete peer" -- "$cur")); return ;;
    "remote-access peer") COMPREPLY=($(compgen -W "add list delete" -- "$cur")); return ;;
    vpc | subnet) COMPREPLY=($(compgen -W "create list show delete" -- "$cur")); return ;;
    sg) COMPREPLY=($(compgen -W "create list show delete allow revoke" -- "$cur")); return ;;
    usage) COMPREPLY=($(compgen -W "show --tenant" -- "$cur")); return ;;
    invoice) COMPREPLY=($(compgen -W "list show" -- "$cur")); return ;;
    budget) COMPREPLY=($(compgen -W "show set" -- "$cur")); return ;;
    vdi) COMPREPLY=($(compgen -W "pool connect desktop my-desktops" -- "$cur")); return ;;
    "vdi pool") COMPREPLY=($(compgen -W "create list show update delete desktops users grant revoke" -- "$cur")); return ;;
    "vdi desktop") COMPREPLY=($(compgen -W "show console sign-out" -- "$cur")); return ;;
    instance) COMPREPLY=($(compgen -W "run list show console stop start reboot terminate image" -- "$cur")); return ;;
    image) COMPREPLY=($(compgen -W "list show register upload import download export task permissions share unshare copy delete" -- "$cur")); return ;;
    keypair) COMPREPLY=($(compgen -W "create import list delete" -- "$cur")); return ;;
    tag) COMPREPLY=($(compgen -W "list set delete" -- "$cur")); return ;;
    region | zone | type) COMPREPLY=($(compgen -W "list" -- "$cur")); return ;;
    admin) COMPREPLY=($(compgen -W "tenant user key type quota requests prices host" -- "$cur")); return ;;
    "admin type") COMPREPLY=($(compgen -W "set" -- "$cur")); return ;;
    password) COMPREPLY=($(compgen -W "set" -- "$cur")); return ;;
    events)
        opts="--type --count --timeout --last-event-id"
        [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "listen" -- "$cur")); return; } ;;
    "admin tenant") COMPREPLY=($(compgen -W "create list enable disable" -- "$cur")); return ;;
    "admin user") COMPREPLY=($(compgen -W "create password enable disable" -- "$cur")); return ;;
    "admin key") COMPREPLY=($(compgen -W "create enable disable" -- "$cur")); return ;;
    "admin quota") COMPREPLY=($(compgen -W "show set" -- "$cur")); return ;;
    "admin host") COMPREPLY=($(compgen -W "list show create update delete evacuate" -- "$cur")); return ;;
    "instance run"*) opts="--image --type --count --key --zone --tag --user-data-file --client-token --placement-group --partition --tenancy --subnet --private-ip --sg --wait --state --timeout" ;;
    "vpc create"*) opts="--cidr --tag" ;;
    "subnet create"*) opts="--vpc --cidr --zone --tag" ;;
    "sg create"*) opts="--vpc --name --description --tag" ;;
    "sg allow"* | "sg revoke"*) opts="--proto --port --icmp-type --icmp-code --cidr --from-group --egress --description" ;;
    "vpc list"* | "subnet list"* | "sg list"*) opts="--filter" ;;
    "address allocate"* | "vpn gateway create"*) opts="--tag --asn" ;;
    "address associate"*) opts="--instance --interface --allow-reassociation" ;;
    "address list"* | "vpn gateway list"* | "vpn customer-gateway list"* | "vpn connection list"*) opts="--filter" ;;
    "vpn gateway attach"* | "vpn gateway detach"*) opts="--vpc" ;;
    "vpn customer-gateway create"*) opts="--ip --asn --device-name --tag" ;;
    "vpn connection create"*) opts="--customer-gateway --vpn-gateway --tag" ;;
    "vpn connection route-"*) opts="--cidr" ;;
    "igw create"*) opts="--tag" ;;
    "igw list"*) opts="--vpc --filter" ;;
    "igw attach"* | "igw detach"*) opts="--vpc" ;;
    "route-table create"*) opts="--vpc --tag" ;;
    "route-table list"*) opts="--vpc --filter" ;;
    "route-table route add"*) opts="--destination --gateway" ;;
    "route-table route delete"*) opts="--destination" ;;
    "route-table associate"*) opts="--subnet" ;;
    "remote-access create"*) opts="--vpc --client-cidr --description" ;;
    "remote-access peer add"*) opts="--public-key --name" ;;
    "usage"* | "invoice list"* | "budget show"* | "budget set"*) opts="--tenant" ;;
    "instance list"*) opts="--state --filter --page-size" ;;
    "instance console"*) opts="--vnc" ;;
    "instance image"*) opts="--name --description --wait --timeout" ;;
    "vdi pool create"*) opts="--image --type --size --spares --persistent --idle-stop --description --subnet --sg --entitlement" ;;
    "vdi pool update"*) opts="--size --spares --idle-stop --entitlement" ;;
    "vdi connect"*) opts="--wait --timeout" ;;
    "image list"*) opts="--owner --filter" ;;
    "image register"*) opts="--name --description --image-type --architecture --public" ;;
    "image upload"* | "image import"*) opts="--name --format --description --architecture --public --wait --timeout --part-size --resume" ;;
    "events listen"*) opts="--type --count --timeout --last-event-id" ;;
    "image download"*) opts="--range" ;;
    "image export"* | "image task"*) opts="--wait --timeout" ;;
    "image share"* | "image unshare"*) opts="--public" ;;
    "image copy"*) opts="--name --description --client-token --wait --timeout" ;;
    "keypair create"*) opts="--type --out" ;;
    "keypair import"*) opts="--public-key-file --public-key" ;;
    "keypair list"* | "type list"*) opts="--filter" ;;
    "tag list"*) opts="--resource --key --filter --page-size" ;;
    "tag delete"*) opts="--all" ;;
    "admin user create"*) opts="--role" ;;
    "admin type set"*) opts="--vcpus --memory-mib --disk-gib --ephemeral-gib --disabled" ;;
    "admin quota set"*) opts="--max-instances --max-vcpus --max-memory-mib --max-elastic-ips --max-image-bytes" ;;
    "admin requests"*) opts="--tenant --action --error-code --errors-only --from --to --limit" ;;
    "admin host create"*) opts="--simulated --zone --agent-url $host_opts" ;;
    "admin host update"*) opts="--state $host_opts" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --help $globals" -- "$cur"))
        return
    fi
    case "${args[*]}" in
    "image upload"* | "image import"* | "image download "* | "image export "*)
        COMPREPLY=($(compgen -f -- "$cur"))
        ;;
    esac
}
complete -F _nubo nubo
