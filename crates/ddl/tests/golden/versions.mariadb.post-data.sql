ALTER TABLE `vault`.`secrets`
  ADD COLUMN `secrets_md5_library_k1` VARCHAR(768) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin GENERATED ALWAYS AS (MD5(`library`)) VIRTUAL INVISIBLE,
  ADD INDEX `secrets_md5_library` (`secrets_md5_library_k1`),
  ADD COLUMN `secrets_lower_manual_k1` VARCHAR(768) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin GENERATED ALWAYS AS (LOWER(`manual`)) VIRTUAL INVISIBLE,
  ADD INDEX `secrets_lower_manual` (`secrets_lower_manual_k1`);

CREATE OR REPLACE VIEW `vault`.`secret_digests` AS SELECT `s`.`id`, MD5(`s`.`library`) AS `tablesample` FROM `vault`.`secrets` `s`;

CREATE OR REPLACE VIEW `vault`.`secret_manuals` AS SELECT `s`.`manual` AS `qualify`, `s`.`parallel` FROM `vault`.`secrets` `s`;

