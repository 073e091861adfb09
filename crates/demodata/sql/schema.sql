-- The schema of the Postgres Pro "demo" airline database (schema `bookings`), as issue 6 describes it.
--
-- The file is in two parts, like a pg_dump: the pre-data part (functions, tables with their NOT NULL
-- and CHECK constraints, the sequence, views and comments) and, after the `-- post-data` marker, the
-- keys. The loader runs the generator between the two parts, because building the indexes and
-- checking the foreign keys once over the loaded data is much faster than maintaining them row by row.
-- Run whole with psql, the file creates an empty database that a real demo dump can be loaded into.

drop schema if exists bookings cascade;
create schema bookings;
comment on schema bookings is 'Airlines demo database schema';

-- The dataset's language: the `bookings.lang` setting (for example `set bookings.lang = en`), or NULL
-- when it is unset, in which case the views show NULL names, as the original does.
create function bookings.lang() returns text
    language plpgsql stable
as $$
begin
    return current_setting('bookings.lang');
exception
    when undefined_object then
        return null;
end;
$$;

comment on function bookings.lang() is 'Language of the names shown by the views (the bookings.lang setting)';

-- The dataset is a snapshot: every status in it is relative to this fixed instant, not to the clock.
create function bookings.now() returns timestamptz
    language sql immutable
as $$ select '2017-08-15 18:00:00'::timestamp at time zone 'Europe/Moscow' $$;

comment on function bookings.now() is 'Point in time when the snapshot was taken';

create table bookings.aircrafts_data (
    aircraft_code char(3) not null,
    model jsonb not null,
    range integer not null,
    constraint aircrafts_range_check check (range > 0)
);

comment on table bookings.aircrafts_data is 'Aircrafts (internal data)';
comment on column bookings.aircrafts_data.aircraft_code is 'Aircraft code, IATA';
comment on column bookings.aircrafts_data.model is 'Aircraft model';
comment on column bookings.aircrafts_data.range is 'Maximal flying distance, km';

create table bookings.airports_data (
    airport_code char(3) not null,
    airport_name jsonb not null,
    city jsonb not null,
    coordinates point not null,
    timezone text not null
);

comment on table bookings.airports_data is 'Airports (internal data)';
comment on column bookings.airports_data.airport_code is 'Airport code';
comment on column bookings.airports_data.airport_name is 'Airport name';
comment on column bookings.airports_data.city is 'City';
comment on column bookings.airports_data.coordinates is 'Airport coordinates (longitude and latitude)';
comment on column bookings.airports_data.timezone is 'Airport time zone';

create table bookings.bookings (
    book_ref char(6) not null,
    book_date timestamptz not null,
    total_amount numeric(10, 2) not null
);

comment on table bookings.bookings is 'Bookings';
comment on column bookings.bookings.book_ref is 'Booking number';
comment on column bookings.bookings.book_date is 'Booking date';
comment on column bookings.bookings.total_amount is 'Total booking cost';

create table bookings.tickets (
    ticket_no char(13) not null,
    book_ref char(6) not null,
    passenger_id varchar(20) not null,
    passenger_name text not null,
    contact_data jsonb
);

comment on table bookings.tickets is 'Tickets';
comment on column bookings.tickets.ticket_no is 'Ticket number';
comment on column bookings.tickets.book_ref is 'Booking number';
comment on column bookings.tickets.passenger_id is 'Passenger ID';
comment on column bookings.tickets.passenger_name is 'Passenger name';
comment on column bookings.tickets.contact_data is 'Passenger contact information';

create sequence bookings.flights_flight_id_seq
    as integer
    start with 1
    increment by 1
    no minvalue
    no maxvalue
    cache 1;

create table bookings.flights (
    flight_id integer not null default nextval('bookings.flights_flight_id_seq'),
    flight_no char(6) not null,
    scheduled_departure timestamptz not null,
    scheduled_arrival timestamptz not null,
    departure_airport char(3) not null,
    arrival_airport char(3) not null,
    status varchar(20) not null,
    aircraft_code char(3) not null,
    actual_departure timestamptz,
    actual_arrival timestamptz,
    constraint flights_check check (scheduled_arrival > scheduled_departure),
    constraint flights_check1 check (
        actual_arrival is null
        or (actual_departure is not null and actual_arrival is not null and actual_arrival > actual_departure)
    ),
    constraint flights_status_check check (
        status in ('On Time', 'Delayed', 'Departed', 'Arrived', 'Scheduled', 'Cancelled')
    )
);

alter sequence bookings.flights_flight_id_seq owned by bookings.flights.flight_id;

comment on table bookings.flights is 'Flights';
comment on column bookings.flights.flight_id is 'Flight ID';
comment on column bookings.flights.flight_no is 'Flight number';
comment on column bookings.flights.scheduled_departure is 'Scheduled departure time';
comment on column bookings.flights.scheduled_arrival is 'Scheduled arrival time';
comment on column bookings.flights.departure_airport is 'Airport of departure';
comment on column bookings.flights.arrival_airport is 'Airport of arrival';
comment on column bookings.flights.status is 'Flight status';
comment on column bookings.flights.aircraft_code is 'Aircraft code, IATA';
comment on column bookings.flights.actual_departure is 'Actual departure time';
comment on column bookings.flights.actual_arrival is 'Actual arrival time';

create table bookings.seats (
    aircraft_code char(3) not null,
    seat_no varchar(4) not null,
    fare_conditions varchar(10) not null,
    constraint seats_fare_conditions_check check (fare_conditions in ('Economy', 'Comfort', 'Business'))
);

comment on table bookings.seats is 'Seats';
comment on column bookings.seats.aircraft_code is 'Aircraft code, IATA';
comment on column bookings.seats.seat_no is 'Seat number';
comment on column bookings.seats.fare_conditions is 'Travel class';

create table bookings.ticket_flights (
    ticket_no char(13) not null,
    flight_id integer not null,
    fare_conditions varchar(10) not null,
    amount numeric(10, 2) not null,
    constraint ticket_flights_amount_check check (amount >= 0),
    constraint ticket_flights_fare_conditions_check check (fare_conditions in ('Economy', 'Comfort', 'Business'))
);

comment on table bookings.ticket_flights is 'Flight segment';
comment on column bookings.ticket_flights.ticket_no is 'Ticket number';
comment on column bookings.ticket_flights.flight_id is 'Flight ID';
comment on column bookings.ticket_flights.fare_conditions is 'Travel class';
comment on column bookings.ticket_flights.amount is 'Travel cost';

create table bookings.boarding_passes (
    ticket_no char(13) not null,
    flight_id integer not null,
    boarding_no integer not null,
    seat_no varchar(4) not null
);

comment on table bookings.boarding_passes is 'Boarding passes';
comment on column bookings.boarding_passes.ticket_no is 'Ticket number';
comment on column bookings.boarding_passes.flight_id is 'Flight ID';
comment on column bookings.boarding_passes.boarding_no is 'Boarding pass number';
comment on column bookings.boarding_passes.seat_no is 'Seat number';

create view bookings.aircrafts as
select ml.aircraft_code,
       ml.model ->> bookings.lang() as model,
       ml.range
from bookings.aircrafts_data ml;

comment on view bookings.aircrafts is 'Aircrafts';
comment on column bookings.aircrafts.aircraft_code is 'Aircraft code, IATA';
comment on column bookings.aircrafts.model is 'Aircraft model';
comment on column bookings.aircrafts.range is 'Maximal flying distance, km';

create view bookings.airports as
select ml.airport_code,
       ml.airport_name ->> bookings.lang() as airport_name,
       ml.city ->> bookings.lang() as city,
       ml.coordinates,
       ml.timezone
from bookings.airports_data ml;

comment on view bookings.airports is 'Airports';
comment on column bookings.airports.airport_code is 'Airport code';
comment on column bookings.airports.airport_name is 'Airport name';
comment on column bookings.airports.city is 'City';
comment on column bookings.airports.coordinates is 'Airport coordinates (longitude and latitude)';
comment on column bookings.airports.timezone is 'Airport time zone';

create view bookings.flights_v as
select f.flight_id,
       f.flight_no,
       f.scheduled_departure,
       timezone(dep.timezone, f.scheduled_departure) as scheduled_departure_local,
       f.scheduled_arrival,
       timezone(arr.timezone, f.scheduled_arrival) as scheduled_arrival_local,
       f.scheduled_arrival - f.scheduled_departure as scheduled_duration,
       f.departure_airport,
       dep.airport_name as departure_airport_name,
       dep.city as departure_city,
       f.arrival_airport,
       arr.airport_name as arrival_airport_name,
       arr.city as arrival_city,
       f.status,
       f.aircraft_code,
       f.actual_departure,
       timezone(dep.timezone, f.actual_departure) as actual_departure_local,
       f.actual_arrival,
       timezone(arr.timezone, f.actual_arrival) as actual_arrival_local,
       f.actual_arrival - f.actual_departure as actual_duration
from bookings.flights f
join bookings.airports dep on dep.airport_code = f.departure_airport
join bookings.airports arr on arr.airport_code = f.arrival_airport;

comment on view bookings.flights_v is 'Flights (extended)';
comment on column bookings.flights_v.flight_id is 'Flight ID';
comment on column bookings.flights_v.flight_no is 'Flight number';
comment on column bookings.flights_v.scheduled_departure is 'Scheduled departure time';
comment on column bookings.flights_v.scheduled_departure_local is 'Scheduled departure time, local time at the point of departure';
comment on column bookings.flights_v.scheduled_arrival is 'Scheduled arrival time';
comment on column bookings.flights_v.scheduled_arrival_local is 'Scheduled arrival time, local time at the point of destination';
comment on column bookings.flights_v.scheduled_duration is 'Scheduled flight duration';
comment on column bookings.flights_v.departure_airport is 'Departure airport code';
comment on column bookings.flights_v.departure_airport_name is 'Departure airport name';
comment on column bookings.flights_v.departure_city is 'City of departure';
comment on column bookings.flights_v.arrival_airport is 'Arrival airport code';
comment on column bookings.flights_v.arrival_airport_name is 'Arrival airport name';
comment on column bookings.flights_v.arrival_city is 'City of arrival';
comment on column bookings.flights_v.status is 'Flight status';
comment on column bookings.flights_v.aircraft_code is 'Aircraft code, IATA';
comment on column bookings.flights_v.actual_departure is 'Actual departure time';
comment on column bookings.flights_v.actual_departure_local is 'Actual departure time, local time at the point of departure';
comment on column bookings.flights_v.actual_arrival is 'Actual arrival time';
comment on column bookings.flights_v.actual_arrival_local is 'Actual arrival time, local time at the point of destination';
comment on column bookings.flights_v.actual_duration is 'Actual flight duration';

-- A route is a flight number; its days of week come from the flights themselves (ISO numbering,
-- Monday = 1), so the view stays true to whatever data is loaded.
create view bookings.routes as
with f3 as (
    select f2.flight_no,
           f2.departure_airport,
           f2.arrival_airport,
           f2.aircraft_code,
           f2.duration,
           array_agg(f2.days_of_week order by f2.days_of_week) as days_of_week
    from (
        select distinct f.flight_no,
               f.departure_airport,
               f.arrival_airport,
               f.aircraft_code,
               f.scheduled_arrival - f.scheduled_departure as duration,
               to_char(f.scheduled_departure, 'ID')::integer as days_of_week
        from bookings.flights f
    ) f2
    group by f2.flight_no, f2.departure_airport, f2.arrival_airport, f2.aircraft_code, f2.duration
)
select f3.flight_no,
       f3.departure_airport,
       dep.airport_name as departure_airport_name,
       dep.city as departure_city,
       f3.arrival_airport,
       arr.airport_name as arrival_airport_name,
       arr.city as arrival_city,
       f3.aircraft_code,
       f3.duration,
       f3.days_of_week
from f3
join bookings.airports dep on dep.airport_code = f3.departure_airport
join bookings.airports arr on arr.airport_code = f3.arrival_airport;

comment on view bookings.routes is 'Routes';
comment on column bookings.routes.flight_no is 'Flight number';
comment on column bookings.routes.departure_airport is 'Code of airport of departure';
comment on column bookings.routes.departure_airport_name is 'Name of airport of departure';
comment on column bookings.routes.departure_city is 'City of departure';
comment on column bookings.routes.arrival_airport is 'Code of airport of arrival';
comment on column bookings.routes.arrival_airport_name is 'Name of airport of arrival';
comment on column bookings.routes.arrival_city is 'City of arrival';
comment on column bookings.routes.aircraft_code is 'Aircraft code, IATA';
comment on column bookings.routes.duration is 'Scheduled duration of flight';
comment on column bookings.routes.days_of_week is 'Days of week on which flights are scheduled';

-- post-data

alter table bookings.aircrafts_data add constraint aircrafts_pkey primary key (aircraft_code);
alter table bookings.airports_data add constraint airports_data_pkey primary key (airport_code);
alter table bookings.bookings add constraint bookings_pkey primary key (book_ref);
alter table bookings.tickets add constraint tickets_pkey primary key (ticket_no);
alter table bookings.flights add constraint flights_pkey primary key (flight_id);
alter table bookings.flights add constraint flights_flight_no_scheduled_departure_key unique (flight_no, scheduled_departure);
alter table bookings.seats add constraint seats_pkey primary key (aircraft_code, seat_no);
alter table bookings.ticket_flights add constraint ticket_flights_pkey primary key (ticket_no, flight_id);
alter table bookings.boarding_passes add constraint boarding_passes_pkey primary key (ticket_no, flight_id);
alter table bookings.boarding_passes add constraint boarding_passes_flight_id_boarding_no_key unique (flight_id, boarding_no);
alter table bookings.boarding_passes add constraint boarding_passes_flight_id_seat_no_key unique (flight_id, seat_no);

alter table bookings.tickets add constraint tickets_book_ref_fkey
    foreign key (book_ref) references bookings.bookings (book_ref);
alter table bookings.flights add constraint flights_aircraft_code_fkey
    foreign key (aircraft_code) references bookings.aircrafts_data (aircraft_code);
alter table bookings.flights add constraint flights_departure_airport_fkey
    foreign key (departure_airport) references bookings.airports_data (airport_code);
alter table bookings.flights add constraint flights_arrival_airport_fkey
    foreign key (arrival_airport) references bookings.airports_data (airport_code);
alter table bookings.seats add constraint seats_aircraft_code_fkey
    foreign key (aircraft_code) references bookings.aircrafts_data (aircraft_code) on delete cascade;
alter table bookings.ticket_flights add constraint ticket_flights_ticket_no_fkey
    foreign key (ticket_no) references bookings.tickets (ticket_no);
alter table bookings.ticket_flights add constraint ticket_flights_flight_id_fkey
    foreign key (flight_id) references bookings.flights (flight_id);
alter table bookings.boarding_passes add constraint boarding_passes_ticket_no_fkey
    foreign key (ticket_no, flight_id) references bookings.ticket_flights (ticket_no, flight_id);
