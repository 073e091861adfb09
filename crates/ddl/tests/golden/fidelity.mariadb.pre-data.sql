CREATE DATABASE IF NOT EXISTS `store` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;

CREATE SEQUENCE `store`.`shared_ids` START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 NOCYCLE;

CREATE TABLE `store`.`category` (
  `category_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(25) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL COMMENT 'the name',
  `last_update` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`category_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE `store`.`film` (
  `film_id` INT NOT NULL AUTO_INCREMENT,
  `title` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL COMMENT 'the title',
  `last_update` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  `checked` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'the checked',
  `note` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin COMMENT 'the note',
  PRIMARY KEY (`film_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE `store`.`payment` (
  `payment_id` BIGINT NOT NULL DEFAULT NEXTVAL(`store`.`shared_ids`),
  `last_update` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`payment_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE `store`.`refund` (
  `refund_id` BIGINT NOT NULL DEFAULT NEXTVAL(`store`.`shared_ids`),
  `note` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin COMMENT 'the note',
  PRIMARY KEY (`refund_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

