// A thin table model over a result's metrics, losses and timings: name, value.
#pragma once

#include "runner.h"

#include <QAbstractTableModel>

namespace studio {

class MetricsModel : public QAbstractTableModel {
    Q_OBJECT
  public:
    using QAbstractTableModel::QAbstractTableModel;
    void setOutput(std::shared_ptr<const RunOutput> out);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  private:
    struct Row {
        QString name;
        QVariant value;
        QString help;
    };
    std::vector<Row> m_rows;
};

} // namespace studio
