INSERT OVERWRITE TABLE sales_dev.orders SELECT * FROM sales_dev.ods_orders;
