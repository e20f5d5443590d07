# On-demand Linux prices of instance types, for the results site: functions only.
#
# The master script records the prices of a cloud run's types at deploy time
# (cloud.fish: cloud_up) into logs/<run-id>/prices.csv and copies the file into
# results/<run-id>/prices.csv once the results are unpacked (cloud_down). The site builder
# reads it (crates/site/src/prices.rs); the same functions refresh the table that ships with
# the builder (crates/site/data/prices.csv, see its README).
#
# Sources: the AWS Price List API (`aws pricing get-products`, which answers only in a few
# regions, us-east-1 among them, whatever region it prices) and the Azure Retail Prices API
# (public, no account). A price that cannot be read is reported and left out: the site then
# falls back to its shipped table, so a missing price never stops a run.

# The CSV header, as crates/site/src/prices.rs reads it.
set -g prices_header provider,instance_type,region,usd_per_hour,currency,source,as_of

# The Azure Retail Prices API.
set -g prices_azure_url https://prices.azure.com/api/retail/prices

function prices_warn
    echo "prices: $argv" >&2
end

# The AWS Price List API's products for TYPE in REGION (Linux, shared tenancy, no
# pre-installed software, not a capacity reservation).
function prices_aws_products --argument-names type region
    command aws pricing get-products --region us-east-1 --service-code AmazonEC2 --output json \
        --filters Type=TERM_MATCH,Field=instanceType,Value=$type Type=TERM_MATCH,Field=regionCode,Value=$region \
        Type=TERM_MATCH,Field=operatingSystem,Value=Linux Type=TERM_MATCH,Field=tenancy,Value=Shared \
        Type=TERM_MATCH,Field=preInstalledSw,Value=NA Type=TERM_MATCH,Field=capacitystatus,Value=Used
end

# Reads a get-products answer on stdin and prints the on-demand USD price per hour, or
# nothing. The filters are applied again here: the answer's products are checked, not trusted.
function prices_parse_aws
    jq -r '[(.PriceList // [])[] | fromjson
            | select(.product.attributes as $a | $a.operatingSystem == "Linux" and $a.tenancy == "Shared"
                     and $a.preInstalledSw == "NA" and $a.capacitystatus == "Used")
            | (.terms.OnDemand // {})[] | .priceDimensions[] | select(.unit == "Hrs")
            | .pricePerUnit.USD | tonumber | select(. > 0)] | min // empty'
end

# The Azure Retail Prices API's pay-as-you-go items for TYPE (an ARM SKU name) in REGION.
function prices_azure_items --argument-names type region
    command curl -fsS --max-time 30 -G $prices_azure_url --data-urlencode api-version=2023-01-01-preview \
        --data-urlencode "\$filter=serviceName eq 'Virtual Machines' and armRegionName eq '$region' and armSkuName eq '$type' and priceType eq 'Consumption'"
end

# Reads a Retail Prices answer on stdin and prints the Linux pay-as-you-go USD price per
# hour, or nothing (Windows, Spot and Low Priority meters are left out).
function prices_parse_azure
    jq -r '[(.Items // [])[]
            | select(.type == "Consumption" and .currencyCode == "USD" and .unitOfMeasure == "1 Hour"
                     and (.productName | test("Windows") | not) and (.skuName | test("Spot|Low Priority") | not))
            | .retailPrice | select(. > 0)] | min // empty'
end

# Prints the price CSV (header and one row per priced type) for PROVIDER:REGION:TYPE entries,
# dated today (UTC); a type without a price is reported on stderr and left out.
function prices_table
    set -l today (date -u +%Y-%m-%d)
    echo $prices_header
    for entry in $argv
        set -l f (string split : -- $entry)
        if test (count $f) != 3
            prices_warn "skipping \"$entry\": expected PROVIDER:REGION:TYPE"
            continue
        end
        set -l price
        set -l source
        switch $f[1]
            case aws
                set source "AWS Price List API"
                set price (prices_aws_products $f[3] $f[2] 2>/dev/null | prices_parse_aws 2>/dev/null)
            case azure
                set source "Azure Retail Prices API"
                set price (prices_azure_items $f[3] $f[2] 2>/dev/null | prices_parse_azure 2>/dev/null)
        end
        if string match -qr '^[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?$' -- "$price"
            echo "$f[1],$f[3],$f[2],$price,USD,$source,$today"
        else
            prices_warn "no price for $f[1] $f[3] in $f[2]: the site will use its shipped table"
        end
    end
end

# Writes FILE with the prices of PROVIDER:REGION:TYPE entries; writes nothing when none could
# be read. Never fails the caller: prices are for the site, not for the run.
function prices_record --argument-names file
    set -l rows (prices_table $argv[2..-1])
    if test (count $rows) -le 1
        prices_warn "no price recorded: the site will use its shipped table"
        return 0
    end
    printf '%s\n' $rows >$file.partial; and mv $file.partial $file
    or prices_warn "cannot write $file"
    return 0
end

# The PROVIDER:REGION:TYPE entries of a cloud run's types (cloud.fish's $cloud_types: one
# "provider type ..." entry each, AWS types in $cloud_aws_region, Azure in $cloud_azure_region).
function prices_cloud_entries
    for entry in $cloud_types
        set -l f (string split ' ' -- $entry)
        set -l region $cloud_aws_region
        test $f[1] = azure; and set region $cloud_azure_region
        echo $f[1]:$region:$f[2]
    end
end

# Copies the recorded FILE into the run's results folder DIR when both exist and DIR has no
# prices.csv yet.
function prices_install --argument-names file dir
    test -f $file -a -d $dir; or return 0
    test -e $dir/prices.csv; and return 0
    cp $file $dir/prices.csv; or prices_warn "cannot copy $file into $dir"
    return 0
end
