-- data.sql
--    Deterministic benchmark data: valid VINs and vehicle values for the 18
--    governed fields.  bench/run.sh loads it into its own database after
--    CREATE EXTENSION stocktech_sync.  Nothing here touches the extension's
--    tables.
--
-- VINs have 17 characters from 0-9 and A-Z without I, O and Q.  Every fifth
-- vehicle has a North American VIN (first character 1) with the check digit
-- of 49 CFR 565.15 at position 9.  The others are European (WMI "WVW") with
-- the letter Z at position 9, which the extension accepts as unverified.
-- Values depend only on the vehicle number and a salt (hashint8), so every
-- run and every target gets the same data.

CREATE SCHEMA IF NOT EXISTS bench;

-- The 33 characters a VIN may contain, in ascending order.
CREATE FUNCTION bench.vin_alphabet()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '0123456789ABCDEFGHJKLMNPRSTUVWXYZ';

-- Write n in base 33 over the VIN alphabet, left-padded to width characters.
CREATE FUNCTION bench.base33(n bigint, width integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT string_agg(substr(bench.vin_alphabet(),
                             ((n / power(33, k)::bigint) % 33)::integer + 1, 1),
                      '' ORDER BY k DESC)
    FROM generate_series(0, width - 1) AS k;
END;

-- Compute the check digit of a 17-character VIN per 49 CFR 565.15:
-- transliterate letters (A-H = 1-8, J-N = 1-5, P = 7, R = 9, S-Z = 2-9),
-- weight positions 1-17 by 8,7,6,5,4,3,2,10,0,9,8,7,6,5,4,3,2, and take the
-- sum modulo 11, with 10 written as X.  Position 9 has weight 0, so any
-- placeholder there gives the same result.
CREATE FUNCTION bench.vin_check_digit(vin text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    digits text := translate(vin, 'ABCDEFGHJKLMNPRSTUVWXYZ', '12345678123457923456789');
    remainder integer;
BEGIN
    remainder := (substr(digits, 1, 1)::integer * 8 + substr(digits, 2, 1)::integer * 7
                  + substr(digits, 3, 1)::integer * 6 + substr(digits, 4, 1)::integer * 5
                  + substr(digits, 5, 1)::integer * 4 + substr(digits, 6, 1)::integer * 3
                  + substr(digits, 7, 1)::integer * 2 + substr(digits, 8, 1)::integer * 10
                  + substr(digits, 10, 1)::integer * 9 + substr(digits, 11, 1)::integer * 8
                  + substr(digits, 12, 1)::integer * 7 + substr(digits, 13, 1)::integer * 6
                  + substr(digits, 14, 1)::integer * 5 + substr(digits, 15, 1)::integer * 4
                  + substr(digits, 16, 1)::integer * 3 + substr(digits, 17, 1)::integer * 2) % 11;
    RETURN CASE remainder WHEN 10 THEN 'X' ELSE remainder::text END;
END
$$;

-- Build the VIN of vehicle number i (1 to 10,000,000).  The serial part is
-- i multiplied by a number coprime to 33 (about 0.618 times the modulus),
-- modulo a power of 33, so distinct vehicle numbers give distinct VINs and
-- consecutive vehicles land far apart in the primary key index.
CREATE FUNCTION bench.make_vin(i bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    head text;
    tail text;
BEGIN
    IF i % 5 = 0 THEN
        head := '1FTFW1E5';
        tail := 'RK' || bench.base33((i * 798176477) % 1291467969, 6);      -- 33^6
        RETURN head || bench.vin_check_digit(head || '0' || tail) || tail;
    END IF;
    RETURN 'WVWZZZ' || bench.base33(i % 1089, 2) || 'Z'
           || bench.base33((i * 869235494273) % 1406408618241, 8);      -- 33^8
END
$$;

-- A non-negative pseudo-random integer for vehicle i and a salt.
CREATE FUNCTION bench.h(i bigint, salt integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashint8(i * 1000 + salt) & 2147483647;

-- One vehicle's values for the 18 governed fields, as one ERP export would
-- send them; another salt gives another, independent set of values.
CREATE TYPE bench.vehicle AS (
    model_code text,
    model_year smallint,
    version_code text,
    color_code text,
    engine_number text,
    dealer_code text,
    commercial_status stocktech_sync.commercial_status,
    financial_status stocktech_sync.financial_status,
    list_price numeric(15,2),
    sales_order text,
    customer_ref text,
    warehouse_location text,
    maint_status stocktech_sync.maint_status,
    pdi_status stocktech_sync.pdi_status,
    vitw_in_transit boolean,
    customs_evidence text,
    arrival_date date,
    odometer_km integer
);

CREATE FUNCTION bench.vehicle_values(i bigint, salt integer)
RETURNS bench.vehicle
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT ROW(
        (ARRAY['GOLF', 'PASSAT', 'TIGUAN', 'POLO', 'TROC', 'ID4', 'F150', 'RANGER'])
            [bench.h(i, salt * 100 + 1) % 8 + 1],
        (2018 + bench.h(i, salt * 100 + 2) % 9)::smallint,
        'TR' || bench.h(i, salt * 100 + 3) % 40,
        'C' || lpad((bench.h(i, salt * 100 + 4) % 60)::text, 3, '0'),
        'EN' || lpad((bench.h(i, salt * 100 + 5) % 100000000)::text, 9, '0'),
        'D' || (100 + bench.h(i, salt * 100 + 6) % 250),
        (enum_range(NULL::stocktech_sync.commercial_status))[bench.h(i, salt * 100 + 7) % 7 + 1],
        (enum_range(NULL::stocktech_sync.financial_status))[bench.h(i, salt * 100 + 8) % 6 + 1],
        (15000 + (bench.h(i, salt * 100 + 9) % 6000000) / 100.0)::numeric(15,2),
        CASE WHEN bench.h(i, salt * 100 + 10) % 4 > 0
             THEN 'SO' || lpad((bench.h(i, salt * 100 + 11) % 100000000)::text, 9, '0') END,
        CASE WHEN bench.h(i, salt * 100 + 12) % 4 > 0
             THEN 'CU' || lpad((bench.h(i, salt * 100 + 13) % 1000000)::text, 7, '0') END,
        'Y' || bench.h(i, salt * 100 + 14) % 20 || '-' || bench.h(i, salt * 100 + 15) % 500,
        (enum_range(NULL::stocktech_sync.maint_status))[bench.h(i, salt * 100 + 16) % 4 + 1],
        (enum_range(NULL::stocktech_sync.pdi_status))[bench.h(i, salt * 100 + 17) % 4 + 1],
        false,
        CASE WHEN bench.h(i, salt * 100 + 18) % 3 > 0
             THEN 'customs/' || i || '/' || bench.h(i, salt * 100 + 19) % 1000 || '.jpg' END,
        DATE '2024-01-01' + bench.h(i, salt * 100 + 20) % 900,
        bench.h(i, salt * 100 + 21) % 50000
    )::bench.vehicle;
END;

-- Vehicle numbers and VINs of a data set of vehicle_count vehicles, with
-- their first ERP values (salt 1).
CREATE FUNCTION bench.initial_vehicles(vehicle_count integer)
RETURNS TABLE (id integer, vin text, v bench.vehicle)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT i, bench.make_vin(i), bench.vehicle_values(i, 1)
    FROM generate_series(1, vehicle_count) AS i;
END;
