CREATE DATABASE IF NOT EXISTS `vault` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin;

CREATE TABLE `vault`.`secrets` (
  `id` BIGINT NOT NULL COMMENT 'the id',
  `manual` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin COMMENT 'the manual',
  `parallel` INT COMMENT 'the parallel',
  `qualify` VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin COMMENT 'the qualify',
  `tablesample` INT COMMENT 'the tablesample',
  `library` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin COMMENT 'the library',
  `external` DATETIME(6) COMMENT 'the external',
  `token` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin DEFAULT (MD5(CAST(RAND() AS CHAR))) COMMENT 'the token',
  `digest` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin GENERATED ALWAYS AS (MD5(`manual`)) STORED COMMENT 'the digest',
  PRIMARY KEY (`id`),
  CONSTRAINT `secrets_qualify_check` CHECK ((`qualify` <> MD5(''))),
  CONSTRAINT `secrets_parallel_check` CHECK ((`parallel` > 0))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_bin COMMENT='secrets table';

