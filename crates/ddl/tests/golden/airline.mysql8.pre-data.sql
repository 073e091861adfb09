CREATE DATABASE IF NOT EXISTS `demo` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin;

CREATE TABLE `demo`.`aircrafts_data` (
  `aircraft_code` CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the aircraft_code',
  `model` JSON NOT NULL COMMENT 'the model',
  `range` INT NOT NULL COMMENT 'the range',
  PRIMARY KEY (`aircraft_code`),
  CONSTRAINT `aircrafts_range_check` CHECK ((`range` > 0))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='aircrafts_data table';

CREATE TABLE `demo`.`airports_data` (
  `airport_code` CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the airport_code',
  `airport_name` JSON NOT NULL COMMENT 'the airport_name',
  `city` JSON NOT NULL COMMENT 'the city',
  `coordinates` POINT NOT NULL COMMENT 'the coordinates',
  `timezone` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the timezone',
  PRIMARY KEY (`airport_code`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='airports_data table';

CREATE TABLE `demo`.`boarding_passes` (
  `ticket_no` CHAR(13) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the ticket_no',
  `flight_id` INT NOT NULL COMMENT 'the flight_id',
  `boarding_no` INT NOT NULL COMMENT 'the boarding_no',
  `seat_no` VARCHAR(4) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the seat_no',
  PRIMARY KEY (`ticket_no`, `flight_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='boarding_passes table';

CREATE TABLE `demo`.`bookings` (
  `book_ref` CHAR(6) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the book_ref',
  `book_date` DATETIME(6) NOT NULL COMMENT 'the book_date',
  `total_amount` DECIMAL(10,2) NOT NULL COMMENT 'the total_amount',
  PRIMARY KEY (`book_ref`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='bookings table';

CREATE TABLE `demo`.`flights` (
  `flight_id` INT NOT NULL AUTO_INCREMENT COMMENT 'the flight_id',
  `flight_no` CHAR(6) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the flight_no',
  `scheduled_departure` DATETIME(6) NOT NULL COMMENT 'the scheduled_departure',
  `scheduled_arrival` DATETIME(6) NOT NULL COMMENT 'the scheduled_arrival',
  `departure_airport` CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the departure_airport',
  `arrival_airport` CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the arrival_airport',
  `status` VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the status',
  `aircraft_code` CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the aircraft_code',
  `actual_departure` DATETIME(6) COMMENT 'the actual_departure',
  `actual_arrival` DATETIME(6) COMMENT 'the actual_arrival',
  PRIMARY KEY (`flight_id`),
  CONSTRAINT `flights_check` CHECK ((`scheduled_arrival` > `scheduled_departure`)),
  CONSTRAINT `flights_check1` CHECK (((`actual_arrival` IS NULL) OR ((`actual_departure` IS NOT NULL) AND (`actual_arrival` > `actual_departure`)))),
  CONSTRAINT `flights_status_check` CHECK ((`status` IN ('On Time', 'Delayed', 'Departed', 'Arrived', 'Scheduled', 'Cancelled')))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='flights table';

CREATE TABLE `demo`.`seats` (
  `aircraft_code` CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the aircraft_code',
  `seat_no` VARCHAR(4) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the seat_no',
  `fare_conditions` VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the fare_conditions',
  PRIMARY KEY (`aircraft_code`, `seat_no`),
  CONSTRAINT `seats_fare_conditions_check` CHECK ((`fare_conditions` IN ('Economy', 'Comfort', 'Business')))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='seats table';

CREATE TABLE `demo`.`ticket_flights` (
  `ticket_no` CHAR(13) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the ticket_no',
  `flight_id` INT NOT NULL COMMENT 'the flight_id',
  `fare_conditions` VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the fare_conditions',
  `amount` DECIMAL(10,2) NOT NULL COMMENT 'the amount',
  PRIMARY KEY (`ticket_no`, `flight_id`),
  CONSTRAINT `ticket_flights_amount_check` CHECK ((`amount` >= 0)),
  CONSTRAINT `ticket_flights_fare_conditions_check` CHECK ((`fare_conditions` IN ('Economy', 'Comfort', 'Business')))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='ticket_flights table';

CREATE TABLE `demo`.`tickets` (
  `ticket_no` CHAR(13) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the ticket_no',
  `book_ref` CHAR(6) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'the book_ref',
  `passenger_id` VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the passenger_id',
  `passenger_name` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin NOT NULL COMMENT 'the passenger_name',
  `contact_data` JSON COMMENT 'the contact_data',
  PRIMARY KEY (`ticket_no`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='tickets table';

